// The handler invariants: every handler start cites a committed assignment,
// runs within the lease term that assignment named, no node runs more
// handlers than its slots, and no two handlers of one job overlap in real time. Judged from the handler events each node records
// (nats/events.ts `onHandler`) against the record writes and node leases.
import { handlerEvents, handlerStart, type Transition } from '../nats/events.ts';
import type { JobRecord } from '../api/contract.ts';
import { byTime, type CheckOptions, type History, killTimes, revisionOf, type Violation } from './history.ts';

type Span = { from: number; to: number };

/**
 * When each process held its node lease validly by its own clock: from each
 * `held` transition until the validity it reports (its own monotonic
 * deadline, mapped to wall time) or its next transition, whichever comes
 * first. Nothing another process did ends it early: a reap or a takeover of
 * the key is invisible to a holder cut off from NATS, which must stop its
 * handlers by itself (docs/design.md, "Cut off from NATS").
 */
export function nodeLeaseLive(history: Transition[]): Map<string, Array<Span & { epoch: number | null }>> {
  const byInstance = new Map<string, Transition[]>();
  for (const t of history.filter((t) => t.kind === 'lease' && t.actor === `${t.node}-node`).sort(byTime)) {
    byInstance.set(t.instance, [...(byInstance.get(t.instance) ?? []), t]);
  }
  const out = new Map<string, Array<Span & { epoch: number | null }>>();
  for (const [instance, evs] of byInstance) {
    const spans: Array<Span & { epoch: number | null }> = [];
    evs.forEach((t, i) => {
      const validUntil = t.data?.validUntil;
      if (!t.to.startsWith('held') || typeof validUntil !== 'number') return;
      const to = Math.min(t.wall + (validUntil - t.mono), evs[i + 1]?.wall ?? Infinity);
      if (to > t.wall) spans.push({ from: t.wall, to, epoch: t.epoch });
    });
    out.set(instance, spans);
  }
  return out;
}

/** One attempt's handler on one process: its start, its end if recorded, and when it stopped at the latest (its end, or its process's death). */
export type HandlerRun = { start: Transition; end: Transition | null; until: number };

/** Every handler run of every job, by job. */
export function handlerRuns(h: History): Map<string, HandlerRun[]> {
  const killed = killTimes(h);
  const out = new Map<string, HandlerRun[]>();
  for (const [id, evs] of h.jobs) {
    const runs: HandlerRun[] = [];
    for (const t of evs) {
      if (t.event === handlerStart) runs.push({ start: t, end: null, until: killed.get(t.pid) ?? Infinity });
      else if (t.event === handlerEvents.end) {
        const run = runs.find((r) => r.end === null && r.start.instance === t.instance && r.start.epoch === t.epoch);
        if (run) {
          run.end = t;
          run.until = Math.min(run.until, t.wall);
        }
      }
    }
    if (runs.length) out.set(id, runs);
  }
  return out;
}

/** The writes that assigned attempt `attempt` of a job (a create already assigned, or an assign). */
const assignmentsOf = (evs: Transition[], attempt: number) =>
  evs.filter((t) => t.epoch === attempt && (t.event === 'job.assign' || t.data?.assigned === true));

/** The lease term the assignment of `attempt` named: from its write in the history, else from the final record. */
function namedTerm(evs: Transition[], attempt: number, record: JobRecord | undefined): number | null {
  for (const t of assignmentsOf(evs, attempt)) if (typeof t.data?.term === 'number') return t.data.term;
  const a = record?.attempts?.[attempt - 1];
  return typeof a?.nodeEpoch === 'number' ? a.nodeEpoch : null;
}

const recordsById = (options: CheckOptions) => new Map((options.records ?? []).map((r) => [r.id, r]));

/**
 * A handler runs only within the lease term named in its assignment: the term it cites is the one named, and its
 * process held that term validly (by its own clock) when the handler started.
 */
export function handlerInTerm(h: History, options: CheckOptions): Violation[] {
  const out: Violation[] = [];
  const records = recordsById(options);
  const live = nodeLeaseLive(h.all);
  for (const [id, runs] of handlerRuns(h)) {
    const evs = h.jobs.get(id) ?? [];
    for (const { start } of runs) {
      if (start.data?.assigned === undefined) continue; // recorded before handlers cited their assignment
      const attempt = start.epoch ?? 0;
      const term = typeof start.data?.term === 'number' ? start.data.term : null;
      const named = namedTerm(evs, attempt, records.get(id));
      const where = `job ${id}'s handler (attempt ${attempt}) on ${start.node}`;
      if (named !== null && term !== named) {
        out.push({
          invariant: 'handler-in-term',
          subject: id,
          message: `${where} ran in lease term ${term} but its assignment named term ${named}`,
          events: [...assignmentsOf(evs, attempt), start],
        });
        continue;
      }
      const spans = (live.get(start.instance) ?? []).filter((s) => term === null || s.epoch === term);
      if (!spans.some((s) => s.from <= start.wall && start.wall < s.to)) {
        out.push({
          invariant: 'handler-in-term',
          subject: id,
          message: `${where} started while ${start.node} did not hold its node lease${term === null ? '' : ` in term ${term}`}`,
          events: [start],
        });
      }
    }
  }
  return out;
}

/**
 * Every handler start cites a committed assignment: the record revision it names is a write that assigned that
 * attempt to that node, or an unrecorded one (its writer died, or its reply was lost, before recording it) that a
 * later write replaced while the job was assigned in that attempt, or whose next recorded version shows that
 * attempt still owned by that node — with the final record saying that attempt went to that node.
 */
export function startCitesAssignment(h: History, options: CheckOptions): Violation[] {
  const out: Violation[] = [];
  const records = recordsById(options);
  for (const [id, runs] of handlerRuns(h)) {
    const evs = h.jobs.get(id) ?? [];
    for (const { start } of runs) {
      const cited = start.data?.assigned;
      if (cited === undefined) continue; // recorded before handlers cited their assignment
      const attempt = start.epoch ?? 0;
      if (options.committed && typeof cited === 'number') {
        const held = options.committed(cited);
        const ok = held !== null && held.id === id && held.state === 'assigned' && held.attempt === attempt &&
          held.owner === start.node;
        if (!ok) {
          out.push({
            invariant: 'start-cites-assignment',
            subject: id,
            message: `job ${id}'s handler (attempt ${attempt}) on ${start.node} started citing record revision ${cited}, which held ${
              held ? `${held.id} ${held.state} (attempt ${held.attempt}, owner ${held.owner ?? 'none'})` : 'no job record write'
            }`,
            events: [start, ...assignmentsOf(evs, attempt)],
          });
        }
        continue;
      }
      const direct = typeof cited === 'number' &&
        assignmentsOf(evs, attempt).some((t) => revisionOf(t) === cited && t.data?.owner === start.node);
      const record = records.get(id);
      // Record writes (a checkpoint event's revision is the checkpoint bucket's).
      const writes = evs.filter((t) => typeof t.data?.replaced === 'number');
      const next = typeof cited === 'number' && !writes.some((t) => revisionOf(t) === cited)
        ? writes.filter((t) => (revisionOf(t) ?? 0) > cited).sort((a, b) => revisionOf(a)! - revisionOf(b)!)[0]
        : undefined;
      const replaced = typeof cited === 'number' && (evs.some((t) =>
        t.data?.replaced === cited && (t.from ?? '').startsWith('assigned') && t.epoch === attempt
      ) || (next !== undefined && next.epoch === attempt && next.data?.owner === start.node)) &&
        (!record || record.attempts?.[attempt - 1]?.node === start.node);
      if (direct || replaced) continue;
      out.push({
        invariant: 'start-cites-assignment',
        subject: id,
        message: `job ${id}'s handler (attempt ${attempt}) on ${start.node} started citing record revision ${
          cited ?? '(none)'
        }, which no committed assignment of that attempt to ${start.node} has`,
        events: [start, ...assignmentsOf(evs, attempt)],
      });
    }
  }
  return out;
}

/**
 * A node never runs more handlers than its slots: at every moment of one process, handlers computing (started, or
 * back from I/O) ≤ its compute slots and handlers waiting on I/O ≤ its I/O slots. A handler that yielded its slot
 * (preempted, draining) no longer counts.
 */
export function slotsBound(h: History): Violation[] {
  const out: Violation[] = [];
  const byInstance = new Map<string, Transition[]>();
  for (const evs of h.jobs.values()) {
    for (const t of evs) {
      if (t.event.startsWith('job.handler.')) byInstance.set(t.instance, [...(byInstance.get(t.instance) ?? []), t]);
    }
  }
  for (const [instance, evs] of byInstance) {
    const mode = new Map<string, 'compute' | 'io'>();
    let limits: { slots: number; ioSlots: number } | null = null;
    let reported = false;
    for (const t of evs.sort((a, b) => a.seq - b.seq)) {
      const key = `${t.actor}#${t.epoch}`;
      if (t.event === handlerStart) {
        mode.set(key, 'compute');
        if (typeof t.data?.slots === 'number') limits = { slots: t.data.slots, ioSlots: Number(t.data.ioSlots ?? 0) };
      } else if (t.event === handlerEvents.io && mode.has(key)) mode.set(key, 'io');
      else if (t.event === handlerEvents.compute && mode.has(key)) mode.set(key, 'compute');
      else if (t.event === handlerEvents.yield || t.event === handlerEvents.end) mode.delete(key);
      if (!limits || reported) continue;
      const computing = [...mode.values()].filter((m) => m === 'compute').length;
      const inIo = mode.size - computing;
      if (computing > limits.slots || inIo > limits.ioSlots) {
        reported = true; // one report per process: the first moment says it
        out.push({
          invariant: 'slots-bound',
          subject: t.node,
          message:
            `${t.node} (${instance}) ran ${computing} handlers computing and ${inIo} in I/O with ${limits.slots} compute and ${limits.ioSlots} I/O slots`,
          events: [t],
        });
      }
    }
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
 * No two handlers of one job overlap in real time: from each handler's start to its end (or its process's death),
 * while both processes held their node leases by their own clocks. Only a frozen process (paused past its lease)
 * is excused: it runs nothing, and stops its handler as soon as it runs again. Nothing another process does (a
 * reap, a takeover) ends a term here: a node cut off from NATS must stop its handlers by itself in time.
 */
export function handlerOverlap(h: History): Violation[] {
  const out: Violation[] = [];
  let live: ReturnType<typeof nodeLeaseLive> | null = null;
  for (const [id, runs] of handlerRuns(h)) {
    if (runs.length < 2) continue;
    live ??= nodeLeaseLive(h.all);
    for (let i = 0; i < runs.length; i++) {
      for (let j = i + 1; j < runs.length; j++) {
        const a = runs[i]!;
        const b = runs[j]!;
        if (a.start.instance === b.start.instance) continue;
        const both = intersect(
          intersect([{ from: a.start.wall, to: a.until }], [{ from: b.start.wall, to: b.until }]),
          intersect(live.get(a.start.instance) ?? [], live.get(b.start.instance) ?? []),
        );
        if (both.length === 0) continue;
        const ms = both.reduce((sum, s) => sum + (s.to - s.from), 0);
        out.push({
          invariant: 'handler-overlap',
          subject: id,
          message:
            `job ${id}'s handler ran on ${a.start.node} (attempt ${a.start.epoch}) and ${b.start.node} (attempt ${b.start.epoch}) at once for ${
              Math.round(ms)
            } ms`,
          events: [a.start, ...(a.end ? [a.end] : []), b.start, ...(b.end ? [b.end] : [])],
        });
      }
    }
  }
  return out;
}
