#!/usr/bin/env bash
# Shoal's own setup: installs the npm dependencies when missing and puts a
# nats-server >= 2.10 in the project-local cache (.cache/nats-server) when no
# good one is found. It never touches the system's apt sources: Debian trixie's
# package is fetched through a private apt list dir and unpacked with dpkg -x.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache="$root/.cache"
min_minor=10 # 2.10+: clustered KV compare-and-swap is broken before 2.9.21 (docs/design.md, nats-server version)

say() { printf 'shoal setup: %s\n' "$*" >&2; }

# `npm install` (which also repairs a stale node_modules); `npm ci` works too: package.json pins
# cbor-extract to 2.2.2 (2.2.3 names platform binaries that were never published, so no lock file
# could hold them and `npm ci` refused).
if [ ! -x node_modules/.bin/tsx ] || [ ! -x node_modules/.bin/deno ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  # --ignore-scripts: no native build steps (cbor-extract's addon would crash Deno); every package here works without them.
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error
fi

good_version() { # prints the version and succeeds when $1 is nats-server >= 2.10
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -n1) || return 1
  [ -n "$v" ] || return 1
  local major minor
  major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  if [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge "$min_minor" ]; }; then echo "$v"; return 0; fi
  return 1
}

# Fetch Debian SUITE's nats-server package into DEST through a private apt list dir.
fetch_debian() {
  local suite=$1 dest=$2 apt_dir="$cache/apt-$1"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$dest"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg opt=""
  [ -f "$keyring" ] && opt="[signed-by=$keyring]"
  echo "deb $opt http://deb.debian.org/debian $suite main" > "$apt_dir/sources.list"
  local apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::archives=$apt_dir/archives"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root" -qq)
  apt-get "${apt_opts[@]}" update >&2
  ( cd "$apt_dir" && rm -f nats-server_*.deb && apt-get "${apt_opts[@]}" download nats-server >&2 )
  dpkg -x "$apt_dir"/nats-server_*.deb "$dest"
}

with_old_nats=0 with_new_nats=0 with_browser=0
for arg in "$@"; do
  case "$arg" in
    --with-old-nats) with_old_nats=1 ;;
    --with-new-nats) with_new_nats=1 ;;
    --with-browser) with_browser=1 ;;
    *) say "unknown option $arg (known: --with-old-nats, --with-new-nats, --with-browser)"; exit 2 ;;
  esac
done

# Install Debian package PKG for WHAT (best effort: without root or apt, or on failure, that test is skipped).
apt_install() {
  local pkg=$1 what=$2
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's $pkg (for $what)"
    apt-get -qq update >&2 && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends "$pkg" >&2 \
      || say "could not install $pkg; $what will be skipped"
  else
    say "no $pkg and cannot apt-get install it; $what will be skipped"
  fi
}

# --with-browser (the test suite): Debian's chromium for the inspector's browser test, driven by
# playwright-core (which never downloads a browser; set CHROMIUM_BIN to use another), and openssl
# for the TLS test's certificates.
if [ "$with_browser" = 1 ] && [ -z "${CHROMIUM_BIN:-}" ] && ! [ -x /usr/bin/chromium ]; then
  apt_install chromium "the inspector's browser test"
fi
if [ "$with_browser" = 1 ] && ! command -v openssl >/dev/null; then
  apt_install openssl "the TLS test"
fi

# --with-old-nats (the test suite): also Debian bookworm's 2.9.10, whose clustered KV
# compare-and-swap is broken, for the test that shows it. Best effort: its absence skips that test.
if [ "$with_old_nats" = 1 ] && [ ! -x "$cache/nats-server-2.9/usr/sbin/nats-server" ] && command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
  say "fetching Debian bookworm's nats-server (2.9.x, for the broken-CAS test) into $cache/nats-server-2.9"
  fetch_debian bookworm "$cache/nats-server-2.9" || say "could not fetch it; that test will be skipped"
fi

# --with-new-nats (the test suite): also the newest nats-server Debian packages (sid: 2.15.x at the time of
# writing), so the tests that matter across versions (consumer counts: 2.15 caps them per stream) run on both.
if [ "$with_new_nats" = 1 ] && [ ! -x "$cache/nats-server-new/usr/sbin/nats-server" ] && command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
  say "fetching Debian sid's nats-server (the newest) into $cache/nats-server-new"
  fetch_debian sid "$cache/nats-server-new" || say "could not fetch it; the tests on the newest server will be skipped"
fi

seen=" "
for cand in "${NATS_SERVER_BIN:-}" "$cache/nats-server/usr/sbin/nats-server" "$(command -v nats-server || true)" /usr/sbin/nats-server /usr/local/bin/nats-server; do
  [ -n "$cand" ] && [ -x "$cand" ] || continue
  case "$seen" in *" $cand "*) continue ;; esac # PATH often finds one of the fixed places again
  seen="$seen$cand "
  if v=$(good_version "$cand"); then say "nats-server $v at $cand"; exit 0; fi
  say "ignoring $cand: version $("$cand" --version 2>/dev/null || echo unknown) is older than 2.10"
done

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  say "no nats-server >= 2.10 found and this is not a Debian-like system."
  say "install one (brew install nats-server, or your distribution's 2.10+ package, or a release from the NATS project) and put it on PATH or set NATS_SERVER_BIN=/path/to/nats-server"
  exit 1
fi

say "no nats-server >= 2.10 found; fetching Debian trixie's package into $cache/nats-server"
fetch_debian trixie "$cache/nats-server"
bin="$cache/nats-server/usr/sbin/nats-server"
if v=$(good_version "$bin"); then say "installed nats-server $v at $bin"; else say "the downloaded nats-server does not run: $("$bin" --version 2>&1 || true)"; exit 1; fi
