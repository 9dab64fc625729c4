// What the scenarios share: a fresh local cluster per scenario (3 node
// processes, one nats-server, lease TTL 1 s), a bounded-width task window, and
// the names and setup text.
import { demoLeaseTtlMs } from '../harness/defaults.ts';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type LocalCluster, startLocalCluster, type UpOptions, waitForReady } from '../harness/local.cluster.ts';
import { names } from '../nats/subjects.ts';

export type ScenarioOptions = { quick: boolean; progress: (done: number, total: number, what: string) => void };

export const n = names();
export const ttl = demoLeaseTtlMs;
export const setup = `3 node processes (4 slots each), one nats-server, lease TTL ${ttl} ms`;

export async function withCluster<T>(
  fn: (c: LocalCluster, nc: NatsConnection) => Promise<T>,
  nodeArgs: string[] = [],
  perNode?: UpOptions['perNode'],
): Promise<T> {
  const c = await startLocalCluster({ nodes: 3, cluster: 1, port: 0, leaseTtlMs: ttl, echo: false, nodeArgs, perNode });
  const nc = await connect({ servers: c.urls });
  try {
    await waitForReady(c.urls, 3);
    return await fn(c, nc);
  } finally {
    await nc.close();
    await c.stop();
  }
}

/** Run `count` tasks, at most `width` at a time. */
export async function window(
  count: number,
  width: number,
  task: (i: number) => Promise<void>,
  tick?: (done: number) => void,
): Promise<void> {
  let next = 0;
  let done = 0;
  await Promise.all(Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) {
      await task(next++);
      tick?.(++done);
    }
  }));
}

export const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
