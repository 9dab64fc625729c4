// What the benchmarks share: percentiles, and end-to-end `noop` throughput
// (submit → succeeded through the public API, 100 in flight).
import type { NatsConnection } from '@nats-io/transport-node';
import { callApi } from '../streams/client.ts';
import type { Names } from '../streams/subjects.ts';

/** The p-th percentile (nearest rank) of `xs`. */
export const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;

export const say = (s: string) => process.stderr.write(`${s}\n`);

/** Jobs per second for `count` `noop` jobs with ids `tp-<tag>-<i>`: submitted 100 at a time, then each awaited. */
export async function throughput(nc: NatsConnection, n: Names, count: number, tag: string): Promise<number> {
  const start = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from({ length: Math.min(100, count - i) }, (_, k) => `tp-${tag}-${i + k}`);
    await Promise.all(batch.map((id) => callApi(nc, n, 'jobs.submit', { type: 'noop', id })));
    ids.push(...batch);
  }
  for (let i = 0; i < ids.length; i += 100) {
    await Promise.all(ids.slice(i, i + 100).map((id) => callApi(nc, n, 'jobs.wait', { id, timeoutMs: 120_000 }, 125_000)));
  }
  return count / ((performance.now() - start) / 1000);
}
