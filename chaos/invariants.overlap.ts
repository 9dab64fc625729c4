// The handler-overlap invariant: no job's handler ran on two processes at
// once while both held live node leases, judged from when each process's node
// lease was valid by the history.
import { handlerEnd, handlerStart, leaseReaped, type Transition } from '../nats/events.ts';
import type { Violation } from './history.ts';
import { byTime, type History } from './history.ts';

type Span = { from: number; to: number };

/**
 * When each process held its node lease validly, by the history: from each
 * `held` transition until the validity it reports (its own monotonic deadline,
 * mapped to wall time) or its next transition, whichever comes first. A term
 * also ends when another process takes the same key (a restart under the same
 * id) or the leader reaps it (its connection was gone).
 */
function nodeLeaseLive(history: Transition[]): Map<string, Span[]> {
  const nodeLease = history.filter((t) => t.kind === 'lease' && t.actor === `${t.node}-node`).sort(byTime);
  const byInstance = new Map<string, Transition[]>();
  for (const t of nodeLease) byInstance.set(t.instance, [...(byInstance.get(t.instance) ?? []), t]);
  /** Times at which an instance's term certainly ended. */
  const ends = new Map<string, number[]>();
  const end = (instance: string, at: number) => ends.set(instance, [...(ends.get(instance) ?? []), at]);
  for (const t of nodeLease) {
    if (!t.to.startsWith('held') || (t.from !== null && t.from.startsWith('held'))) continue;
    for (const other of byInstance.values()) {
      const o = other[0]!;
      if (o.instance !== t.instance && o.actor === t.actor) end(o.instance, t.wall);
    }
  }
  for (const t of history) {
    if (t.event === leaseReaped && typeof t.data?.holder === 'string') end(t.data.holder, t.wall);
  }
  const out = new Map<string, Span[]>();
  for (const [instance, evs] of byInstance) {
    const cuts = ends.get(instance) ?? [];
    const spans: Span[] = [];
    // A term starts when the lease is acquired; a cut ends the whole term, so
    // renewals the holder still attempts after it (they will be refused) add nothing.
    let termCut = Infinity;
    evs.forEach((t, i) => {
      const held = t.to.startsWith('held');
      if (held && !(t.from ?? '').startsWith('held')) termCut = Math.min(...cuts.filter((c) => c >= t.wall));
      const validUntil = t.data?.validUntil;
      if (!held || typeof validUntil !== 'number') return;
      const to = Math.min(t.wall + (validUntil - t.mono), evs[i + 1]?.wall ?? Infinity, termCut);
      if (to > t.wall) spans.push({ from: t.wall, to });
    });
    out.set(instance, spans);
  }
  return out;
}

function intersect(a: Span[], b: Span[]): Span[] {
  const out: Span[] = [];
  for (const x of a) {
    for (const y of b) {
      const from = Math.max(x.from, y.from);
      const to = Math.min(x.to, y.to);
      if (from < to) out.push({ from, to });
    }
  }
  return out;
}

/**
 * No job's handler ran on two processes at once while both held live node
 * leases. Overlap is allowed where one lease had already expired (a paused or
 * cut-off owner whose job moved on): its late writes are judged by 'fenced-writes'.
 */
export function handlerOverlap({ all: history, jobs }: History): Violation[] {
  const out: Violation[] = [];
  let live: Map<string, Span[]> | null = null;
  for (const [id, evs] of jobs) {
    const runs: Array<{ start: Transition; end: Transition | null }> = [];
    for (const t of evs) {
      if (t.event === handlerStart) runs.push({ start: t, end: null });
      else if (t.event === handlerEnd) {
        const run = runs.find((r) => r.end === null && r.start.instance === t.instance && r.start.epoch === t.epoch);
        if (run) run.end = t;
      }
    }
    if (runs.length < 2) continue;
    live ??= nodeLeaseLive(history);
    for (let i = 0; i < runs.length; i++) {
      for (let j = i + 1; j < runs.length; j++) {
        const a = runs[i]!;
        const b = runs[j]!;
        if (a.start.instance === b.start.instance) continue;
        const both = intersect(
          intersect([{ from: a.start.wall, to: a.end?.wall ?? Infinity }], [{ from: b.start.wall, to: b.end?.wall ?? Infinity }]),
          intersect(live.get(a.start.instance) ?? [], live.get(b.start.instance) ?? []),
        );
        if (both.length === 0) continue;
        const ms = both.reduce((sum, s) => sum + (s.to - s.from), 0);
        out.push({
          invariant: 'handler-overlap',
          subject: id,
          message:
            `job ${id}'s handler ran on ${a.start.node} (attempt ${a.start.epoch}) and ${b.start.node} (attempt ${b.start.epoch}) at once for ${ms} ms while both held live node leases`,
          events: [a.start, ...(a.end ? [a.end] : []), b.start, ...(b.end ? [b.end] : [])],
        });
      }
    }
  }
  return out;
}
