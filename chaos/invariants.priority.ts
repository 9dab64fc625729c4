// The priority invariant: no priority inversion at placement. Judged from the
// job writes in the history: each job's priority and submit time (its create),
// and the stretches it waited in the queue ready to be placed, from when its
// queued record was in the jobs bucket (where a leader can see it) on.
import { effectivePriority } from '../policies/placement.ts';
import type { Transition } from '../nats/events.ts';
import type { History, Violation } from './history.ts';

/**
 * How long a job of higher priority may already have waited, placeable, when
 * one of lower priority is assigned. A leader offers queued jobs highest
 * (effective) priority first and awards in that order, so an inversion needs a
 * view of the queue older than this: a leader's job index lagging the bucket.
 */
export const priorityBoundMs = 1_000;

/** A stretch in the queue: from its entry to `exit` (the write that ended it; none while it still waits or where the history lacks it). */
type Waiting = { from: number; to: number; entry: Transition; exit?: Transition };
type JobFacts = { priority: number; createdAt: number; type: string; constrained: boolean; waits: Waiting[] };

/** Entered the queue ready to be placed (not a retry: that waits out its backoff first). */
const readyEntries = new Set(['job.submit', 'job.orphan', 'job.unstarted', 'job.preempt']);

/** A job record write (a CAS that landed), with the jobs-bucket revision it got and the one it replaced. */
type Write = Transition & { data: { revision: number; replaced: number } };
const isWrite = (t: Transition): t is Write =>
  t.kind === 'job' && typeof t.data?.revision === 'number' && typeof t.data?.replaced === 'number';

/**
 * The bucket's commit order (revisions) read against the writers' clocks. A
 * write's `wall` is when its writer decided it (a create: the submit's stamp);
 * it lands later, seconds later if the writer's link held it (a blackhole).
 */
function bucketTimes(all: Transition[]) {
  // Each process's wall − mono, from its events stamped when recorded (a write's wall is its decision instead).
  const offsets = new Map<string, Array<{ seq: number; offset: number }>>();
  for (const t of all) {
    if (!isWrite(t)) offsets.set(t.instance, [...(offsets.get(t.instance) ?? []), { seq: t.seq, offset: t.wall - t.mono }]);
  }
  /** Its writer recorded it once the reply came: at its `mono`, as that process's wall time. */
  const ackedAt = (w: Write) => {
    const os = offsets.get(w.instance);
    if (!os?.length) return w.wall;
    const near = os.reduce((a, b) => (Math.abs(b.seq - w.seq) < Math.abs(a.seq - w.seq) ? b : a));
    return Math.max(w.wall, w.mono + near.offset);
  };
  const writes = all.filter(isWrite).sort((a, b) => a.data.revision - b.data.revision);
  const revs = writes.map((w) => w.data.revision);
  const decidedBefore: number[] = []; // prefix max of decision times
  writes.forEach((w, i) => decidedBefore.push(Math.max(w.wall, i ? decidedBefore[i - 1]! : -Infinity)));
  const ackedFrom: number[] = []; // suffix min of reply times
  for (let i = writes.length - 1; i >= 0; i--) ackedFrom[i] = Math.min(ackedAt(writes[i]!), ackedFrom[i + 1] ?? Infinity);
  return {
    /** When `w` was in the bucket at the latest: the earliest reply to it or to any write with a later revision. */
    landedBy: (w: Write) => Math.max(w.wall, ackedFrom[revs.indexOf(w.data.revision)] ?? ackedAt(w)),
    /**
     * The first revision after `rev` the history lacks landed after every write before it was decided: till
     * then a record the history shows at `rev` was still so.
     */
    unchangedUntil: (rev: number) => {
      let i = revs.indexOf(rev);
      while (i + 1 < revs.length && revs[i + 1] === revs[i]! + 1) i++;
      return i < 0 ? -Infinity : decidedBefore[i]!;
    },
  };
}

function facts(evs: Transition[], bucket: ReturnType<typeof bucketTimes>): JobFacts | null {
  const submit = evs.find((t) => t.event === 'job.submit');
  if (!submit || typeof submit.data?.priority !== 'number') return null;
  // Record writes in commit order where the history has revisions (a writer's clock may order them otherwise).
  const changes = evs.filter((t) => t.event !== 'job.checkpoint' && !t.event.startsWith('job.handler.'));
  const revisions = changes.every(isWrite);
  if (revisions) changes.sort((a, b) => (a as Write).data.revision - (b as Write).data.revision);
  const waits: Waiting[] = [];
  let open: { at: number; entry: Transition } | null = null;
  let last: number | null = null;
  for (const t of changes) {
    if (revisions) {
      const { revision, replaced } = (t as Write).data;
      // It replaced a revision the history does not show: writes of this job are missing (a writer whose reply was
      // lost never records its write; a process cut off, then killed, loses its events). The job may have left
      // the queue at the first of them.
      if (open !== null && last !== null && replaced !== last) {
        waits.push({ from: open.at, to: bucket.unchangedUntil(last), entry: open.entry });
        open = null;
      }
      last = revision;
    }
    if (t.from === t.to) continue;
    const queued = t.to === 'queued';
    if (queued && open === null && readyEntries.has(t.event)) open = { at: revisions ? bucket.landedBy(t as Write) : t.wall, entry: t };
    if (!queued && open !== null) {
      waits.push({ from: open.at, to: t.wall, entry: open.entry, exit: t });
      open = null;
    }
  }
  if (open !== null) waits.push({ from: open.at, to: Infinity, entry: open.entry });
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
 * the same type and without requirements, has waited in the queue (placeable,
 * its queued record in the bucket) for more than `priorityBoundMs`, unless the
 * same placement round assigned that one too.
 */
export function priorityOrder({ all, jobs }: History): Violation[] {
  const bucket = bucketTimes(all);
  const byJob = new Map<string, JobFacts>();
  for (const [id, evs] of jobs) {
    const f = facts(evs, bucket);
    if (f) byJob.set(id, f);
  }
  const out: Violation[] = [];
  for (const [id, evs] of jobs) {
    const low = byJob.get(id);
    if (!low) continue;
    for (const a of evs) {
      // An assignment: of a queued job, or a new job's record created already assigned.
      if (a.event !== 'job.assign' && !(a.event === 'job.submit' && a.data?.assigned === true)) continue;
      const t = a.wall;
      const mine = effectivePriority(low, t);
      for (const [hid, high] of byJob) {
        if (hid === id || high.constrained || high.type !== low.type || effectivePriority(high, t) <= mine) continue;
        const w = high.waits.find((x) => x.from <= t - priorityBoundMs && x.to > t);
        // Placed in the same round: the leader chose both together; which write landed first says nothing.
        if (!w || (a.data?.round !== undefined && w.exit?.data?.round === a.data.round)) continue;
        out.push({
          invariant: 'priority-order',
          subject: id,
          message: `job ${id} (priority ${low.priority}) was assigned while job ${hid} (priority ${high.priority}) had waited ${
            Math.round(t - w.from)
          } ms in the queue`,
          events: [a, w.entry],
        });
        break;
      }
    }
  }
  return out;
}
