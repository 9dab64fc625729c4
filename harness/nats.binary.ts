// Which nats-server binary to run: an explicit choice, the project cache
// (scripts/setup.sh), or PATH; never one older than 2.10 unless asked.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NatsServerNotFoundError, NatsServerVersionError } from '../base/errors.ts';
import { isSupportedNatsServerVersion, parseNatsServerVersion } from '../nats/version.ts';

export type NatsServerBinary = { path: string; version: string };

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cachedNatsServer = join(projectRoot, '.cache', 'nats-server', 'usr', 'sbin', 'nats-server');
/** The newest nats-server Debian packages (setup --with-new-nats), for the tests that run on both versions. */
export const cachedNewestNatsServer = join(projectRoot, '.cache', 'nats-server-new', 'usr', 'sbin', 'nats-server');

/** An explicit choice (option or NATS_SERVER_BIN) is the only candidate: a bad one is an error, not a fallback. */
function candidates(bin?: string): string[] {
  const chosen = bin ?? process.env.NATS_SERVER_BIN;
  if (chosen) return [chosen];
  const out = [cachedNatsServer];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir) out.push(join(dir, 'nats-server'));
  out.push('/usr/sbin/nats-server', '/usr/local/bin/nats-server');
  return [...new Set(out)];
}

export async function findNatsServer(opts: { allowOld?: boolean; bin?: string } = {}): Promise<NatsServerBinary> {
  const looked = candidates(opts.bin);
  let old: NatsServerBinary | null = null;
  for (const path of looked) {
    if (!existsSync(path)) continue;
    const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 5_000 });
    const version = parseNatsServerVersion(`${r.stdout ?? ''}${r.stderr ?? ''}`);
    if (!version) continue;
    if (isSupportedNatsServerVersion(version) || opts.allowOld) return { path, version };
    old ??= { path, version };
  }
  if (old) throw new NatsServerVersionError(old.path, old.version);
  throw new NatsServerNotFoundError(looked);
}
