#!/usr/bin/env bash
# The whole test suite: type check, the runtime-neutral unit tests under Deno,
# then unit + integration tests (real nats-server, real node processes) and the
# inspector in headless Chromium under Node's test runner, whose summary closes the output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-old-nats --with-new-nats --with-browser
export PATH="$PWD/node_modules/.bin:$PATH"
echo "== tsc --noEmit"
tsc --noEmit -p .
echo "== deno fmt --check (npm run fmt formats), deno lint (recommended rules, less require-await: async port implementations stay async so a throw is a rejection)"
deno fmt --check --quiet
deno lint --quiet
echo "== unit tests under Deno"
deno test -A --quiet test/unit/
echo "== unit and integration tests under Node"
tsx --test --test-concurrency=1 --test-timeout=900000 test/unit/*.test.ts test/integration/*.test.ts test/browser/*.test.ts
