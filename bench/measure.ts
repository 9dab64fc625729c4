// What the benchmarks share: percentiles, and end-to-end `noop` throughput
// (submit → succeeded through the public API, 100 in flight).
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { callApi } from '../nats/client.ts';
import type { Names } from '../nats/subjects.ts';

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

/** Messages stored per stream (its last sequence): the job records, checkpoints, leases and events. */
async function lastSeqs(nc: NatsConnection, n: Names): Promise<Record<string, number>> {
  const jsm = await jetstreamManager(nc);
  const streams = {
    'job record writes': `KV_${n.jobsBucket}`,
    'checkpoint writes': `KV_${n.checkpointsBucket}`,
    'lease writes': `KV_${n.leasesBucket}`,
    'event publishes': n.eventsStream,
  };
  const out: Record<string, number> = {};
  for (const [what, stream] of Object.entries(streams)) out[what] = (await jsm.streams.info(stream)).state.last_seq;
  return out;
}

/** Runs `work` (which finishes `jobs` jobs) and counts what the server stored meanwhile, per job. */
export async function writesPerJob<T>(
  nc: NatsConnection,
  n: Names,
  jobs: number,
  work: () => Promise<T>,
): Promise<{ result: T; perJob: Record<string, number> }> {
  const before = await lastSeqs(nc, n);
  const result = await work();
  const after = await lastSeqs(nc, n);
  const perJob = Object.fromEntries(Object.keys(before).map((k) => [k, (after[k]! - before[k]!) / jobs]));
  return { result, perJob };
}
