// Small shared test helpers. Importing this also makes a test file that the
// runner stops (timeout, Ctrl-C) kill every node process and server it started.
import { killAllNodes } from '../actors/spawn.ts';
import { stopAllServers } from '../streams/launcher.ts';
import { sleep } from '../streams/time.ts';

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    killAllNodes();
    stopAllServers();
    process.exit(130);
  });
}

/** Poll `fn` until it returns something truthy; fail with `what` (and the last error) at the deadline. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
