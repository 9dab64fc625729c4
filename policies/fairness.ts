// Fairness as numbers: work done per node (job-seconds of attempts that ran
// there) over a sliding window, and the Gini coefficient of it across nodes.
// Status, metrics, the cluster model and the strategy comparison use these.
import type { Fairness } from '../api/contract.ts';
import type { JobRecord } from '../api/contract.ts';

/** Gini coefficient of non-negative values (0: all equal; → 1: one has everything). */
export function gini(xs: number[]): number {
  const n = xs.length;
  const sum = xs.reduce((a, b) => a + b, 0);
  if (n === 0 || sum === 0) return 0;
  let acc = 0;
  for (const a of xs) for (const b of xs) acc += Math.abs(a - b);
  return acc / (2 * n * sum);
}

/**
 * Job-seconds each of `nodes` ran in [now − windowMs, now] (a running attempt
 * counts up to now); others' work is left out. Without `nodes`: every node that
 * ran any work in the window.
 */
export function workByNode(
  records: Iterable<JobRecord>,
  nodes: string[] | undefined,
  now: number,
  windowMs: number,
): Record<string, number> {
  const from = now - windowMs;
  const out: Record<string, number> = Object.fromEntries((nodes ?? []).map((x) => [x, 0]));
  for (const r of records) {
    for (const a of r.attempts) {
      if (a.startedAt === null || (nodes && !(a.node in out))) continue;
      const overlap = Math.min(a.endedAt ?? now, now) - Math.max(a.startedAt, from);
      if (overlap > 0) out[a.node] = (out[a.node] ?? 0) + overlap / 1000;
    }
  }
  return out;
}

export function fairness(records: Iterable<JobRecord>, nodes: string[] | undefined, now: number, windowMs: number): Fairness {
  const jobSeconds = workByNode(records, nodes, now, windowMs);
  for (const k of Object.keys(jobSeconds)) jobSeconds[k] = Math.round(jobSeconds[k]! * 1000) / 1000;
  return { windowMs, jobSeconds, gini: Math.round(gini(Object.values(jobSeconds)) * 1e4) / 1e4 };
}
