// The priority invariant: no priority inversion at placement. Judged from the
// job writes in the history: each job's priority and submit time (its create),
// and the stretches it waited in the queue ready to be placed.
import { effectivePriority } from '../policies/placement.ts';
import type { Transition } from '../nats/events.ts';
import type { Violation } from './history.ts';
import type { History } from './history.ts';

/**
 * How long a job of higher priority may already have waited, placeable, when
 * one of lower priority is assigned. A leader offers queued jobs highest
 * (effective) priority first and awards in that order, so an inversion needs a
 * view of the queue older than this: a leader's job index lagging the bucket.
 */
export const priorityBoundMs = 1_000;

type Waiting = { from: number; to: number };
type JobFacts = { priority: number; createdAt: number; type: string; constrained: boolean; waits: Waiting[] };

/** Entered the queue ready to be placed (not a retry: that waits out its backoff first). */
const readyEntries = new Set(['job.submit', 'job.orphan', 'job.unstarted', 'job.preempt']);

function facts(evs: Transition[]): JobFacts | null {
  const submit = evs.find((t) => t.event === 'job.submit');
  if (!submit || typeof submit.data?.priority !== 'number') return null;
  const waits: Waiting[] = [];
  let open: number | null = null;
  for (const t of evs) {
    if (t.event === 'job.checkpoint' || t.from === t.to) continue;
    const queued = t.to === 'queued';
    if (queued && open === null && readyEntries.has(t.event)) open = t.wall;
    if (!queued && open !== null) {
      waits.push({ from: open, to: t.wall });
      open = null;
    }
  }
  if (open !== null) waits.push({ from: open, to: Infinity });
  return {
    priority: submit.data.priority,
    createdAt: submit.wall,
    type: String(submit.data.type),
    constrained: !!submit.data.requires,
    waits,
  };
}

/**
 * No job is assigned while a job of strictly higher effective priority, of
 * the same type and without requirements, has waited in the queue (placeable)
 * for more than `priorityBoundMs`.
 */
export function priorityOrder({ jobs }: History): Violation[] {
  const all = new Map<string, JobFacts>();
  for (const [id, evs] of jobs) {
    const f = facts(evs);
    if (f) all.set(id, f);
  }
  const out: Violation[] = [];
  for (const [id, evs] of jobs) {
    const low = all.get(id);
    if (!low) continue;
    for (const a of evs) {
      if (a.event !== 'job.assign') continue;
      const t = a.wall;
      const mine = effectivePriority(low, t);
      for (const [hid, high] of all) {
        if (hid === id || high.constrained || high.type !== low.type || effectivePriority(high, t) <= mine) continue;
        const w = high.waits.find((x) => x.from <= t - priorityBoundMs && x.to > t);
        if (!w) continue;
        out.push({
          invariant: 'priority-order',
          subject: id,
          message: `job ${id} (priority ${low.priority}) was assigned while job ${hid} (priority ${high.priority}) had waited ${
            t - w.from
          } ms in the queue`,
          events: [a, ...(jobs.get(hid) ?? []).filter((x) => x.wall === w.from)],
        });
        break;
      }
    }
  }
  return out;
}
