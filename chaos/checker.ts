// The history checker: reads the events history (every machine transition
// and every job record write) plus the final job records, and reports each
// broken invariant with the job or epoch and the events that break it.
// Pure and runtime-neutral: the simulation and the real-process chaos runs use the same one.
import type { JobRecord } from '../machines/job.machine.ts';
import { handlerEnd, handlerStart, isLeaderAction, leaseReaped, type Transition } from '../streams/events.ts';

/** Every invariant the checker judges, in the order it reports them. */
export const invariants = [
  'one-terminal-state',
  'lost-update',
  'result-kept',
  'result-correct',
  'fenced-writes',
  'resume-from-checkpoint',
  'one-leader-per-epoch',
  'epochs-increase',
  'stale-leader-acted',
  'handler-overlap',
  'no-leader',
  'not-terminal',
  /** Not from the history: the simulation saw code under test throw where a real process would have died. */
  'uncaught-error',
] as const;

export type Violation = {
  invariant: (typeof invariants)[number];
  /** The job id, or `epoch <n>`. */
  subject: string;
  message: string;
  events: Transition[];
};

export type CheckOptions = {
  /** Final records (from the jobs bucket); without them only the history is checked. */
  records?: JobRecord[];
  /** The true result for a job, when it can be computed (primes); undefined to skip. */
  expected?: (type: string, input: unknown) => unknown;
  /** After faults stopped and the bound passed: every job must be terminal. */
  expectAllTerminal?: boolean;
  /** Wall ms when the faults stopped; with `leaderWithinMs`, a leader must act within that long after it. */
  faultsEndedAt?: number;
  leaderWithinMs?: number;
};

const terminal = (state: string) => state === 'succeeded' || state === 'failed' || state === 'cancelled';
/** Writes only the owner of the current attempt may make. */
const ownerWrites = new Set(['job.progress', 'job.phase', 'job.succeed', 'job.fail', 'job.timeout', 'job.preempt', 'job.checkpoint']);

function byTime(a: Transition, b: Transition): number {
  return a.wall - b.wall || (a.instance === b.instance ? a.seq - b.seq : 0);
}

const revisionOf = (t: Transition): number | null => (typeof t.data?.revision === 'number' ? t.data.revision : null);

export function checkHistory(all: Transition[], o: CheckOptions = {}): Violation[] {
  const out: Violation[] = [];
  // One event per process and sequence number, however often a reader saw it.
  const seen = new Set<string>();
  const history = all.filter((t) => {
    const key = `${t.instance}:${t.seq}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
  const jobs = new Map<string, Transition[]>();
  for (const t of history) if (t.kind === 'job') jobs.set(t.actor, [...(jobs.get(t.actor) ?? []), t]);

  for (const [id, evs] of jobs) {
    evs.sort(byTime);
    const finals = evs.filter((t) => terminal(t.to.split('.')[0]!) && (t.from === null || !terminal(t.from.split('.')[0]!)));
    if (finals.length > 1) {
      out.push({ invariant: 'one-terminal-state', subject: id, message: `job ${id} reached a terminal state ${finals.length} times`, events: finals });
    }
    // Per-record CAS is the law: each revision of a record is replaced by at most one write.
    const byReplaced = new Map<number, Transition[]>();
    for (const t of evs) {
      const r = t.data?.replaced;
      if (typeof r === 'number') byReplaced.set(r, [...(byReplaced.get(r) ?? []), t]);
    }
    for (const [rev, ws] of byReplaced) {
      if (ws.length < 2) continue;
      out.push({
        invariant: 'lost-update', subject: id,
        message: `${ws.length} writes of job ${id} replaced revision ${rev} (${ws.map((w) => `${w.event} by ${w.node} → revision ${revisionOf(w)}`).join(', ')}): compare-and-swap let both through, so one was lost`,
        events: ws,
      });
    }
    // Judged by commit order where the history has it (KV revisions): a paused or
    // cut-off writer reports late, but its write was fenced, or not, when it landed.
    const starts = evs.filter((t) => t.event === 'job.start');
    const checkpoints = evs.filter((t) => t.event === 'job.checkpoint');
    /** The checkpoint revision each attempt's claim got (on its handler start). */
    const claims = new Map<number, number>();
    for (const t of evs) if (t.event === handlerStart && typeof t.data?.claimed === 'number') claims.set(t.epoch ?? 0, t.data.claimed);
    /** Record write `t` landed after start `s` (job record revisions, else time). */
    const recordAfter = (t: Transition, s: Transition) => {
      const a = revisionOf(t);
      const b = revisionOf(s);
      return a !== null && b !== null ? a > b : byTime(s, t) < 0;
    };
    /** Checkpoint `c` landed after the claim of start `s`'s attempt (checkpoint revisions, else after the start in time). */
    const checkpointAfter = (c: Transition, s: Transition) => {
      const claimed = claims.get(s.epoch ?? 0);
      const r = revisionOf(c);
      return claimed !== undefined && r !== null ? r > claimed : byTime(s, c) < 0;
    };
    // Owner writes from an attempt older than one already started were not fenced.
    for (const t of evs) {
      if (!ownerWrites.has(t.event)) continue;
      const newer = starts.find((s) => (s.epoch ?? 0) > (t.epoch ?? 0) && (t.event === 'job.checkpoint' ? checkpointAfter(t, s) : recordAfter(t, s)));
      if (newer) {
        out.push({ invariant: 'fenced-writes', subject: id, message: `attempt ${t.epoch} of job ${id} wrote ${t.event} after attempt ${newer.epoch} started`, events: [newer, t] });
      }
    }
    // A resumed attempt starts at or above every checkpoint committed before it claimed the slot.
    for (const s of starts) {
      const resumedFrom = Number(s.data?.resumedFrom ?? 0);
      let best: Transition | null = null;
      for (const c of checkpoints) {
        if ((c.epoch ?? 0) >= (s.epoch ?? 0) || checkpointAfter(c, s)) continue;
        if (!best || Number(c.data?.progress ?? 0) > Number(best.data?.progress ?? 0)) best = c;
      }
      const committed = Number(best?.data?.progress ?? 0);
      if (best && resumedFrom + 1e-9 < committed) {
        out.push({
          invariant: 'resume-from-checkpoint', subject: id,
          message: `attempt ${s.epoch} of job ${id} resumed from ${resumedFrom}, below the committed checkpoint ${committed} of attempt ${best.epoch}`,
          events: [best, s],
        });
      }
    }
  }

  for (const r of o.records ?? []) {
    const evs = jobs.get(r.id) ?? [];
    const done = evs.find((t) => t.to === 'succeeded' && t.from !== 'succeeded');
    if (r.state === 'succeeded' && done && JSON.stringify(done.data?.result) !== JSON.stringify(r.result)) {
      out.push({ invariant: 'result-kept', subject: r.id, message: `job ${r.id}'s result changed after it succeeded: ${JSON.stringify(done.data?.result)} → ${JSON.stringify(r.result)}`, events: [done] });
    }
    const want = r.state === 'succeeded' ? o.expected?.(r.type, r.input) : undefined;
    if (want !== undefined && JSON.stringify(want) !== JSON.stringify(r.result)) {
      out.push({ invariant: 'result-correct', subject: r.id, message: `job ${r.id} (${r.type}) returned ${JSON.stringify(r.result)}, expected ${JSON.stringify(want)}`, events: done ? [done] : [] });
    }
    if (o.expectAllTerminal && !terminal(r.state)) {
      out.push({ invariant: 'not-terminal', subject: r.id, message: `job ${r.id} is still ${r.state} (attempt ${r.attempt}, owner ${r.owner})`, events: evs.slice(-3) });
    }
  }

  // Leadership: who led under which epoch, and when each began to act.
  const leading = history.filter((t) => t.kind === 'coordinator' && t.to.startsWith('active.leader') && t.epoch !== null).sort(byTime);
  const acts = leading.filter(isLeaderAction);
  const byEpoch = new Map<number, Transition[]>();
  for (const t of leading) byEpoch.set(t.epoch!, [...(byEpoch.get(t.epoch!) ?? []), t]);
  for (const [epoch, evs] of byEpoch) {
    const who = new Set(evs.map((t) => t.instance));
    if (who.size > 1) {
      out.push({ invariant: 'one-leader-per-epoch', subject: `epoch ${epoch}`, message: `${who.size} processes acted as leader under epoch ${epoch}: ${[...new Set(evs.map((t) => t.node))].join(', ')}`, events: evs });
    }
  }
  const firstActs = [...byEpoch.entries()].map(([epoch, evs]) => ({ epoch, first: evs[0]! })).sort((a, b) => byTime(a.first, b.first));
  for (let i = 1; i < firstActs.length; i++) {
    if (firstActs[i]!.epoch < firstActs[i - 1]!.epoch) {
      out.push({ invariant: 'epochs-increase', subject: `epoch ${firstActs[i]!.epoch}`, message: `epoch ${firstActs[i]!.epoch} started acting after epoch ${firstActs[i - 1]!.epoch}`, events: [firstActs[i - 1]!.first, firstActs[i]!.first] });
    }
  }
  for (const t of acts) {
    const newer = firstActs.find((f) => f.epoch > t.epoch! && f.first.wall < t.wall);
    if (newer) {
      out.push({ invariant: 'stale-leader-acted', subject: `epoch ${t.epoch}`, message: `${t.node} acted under epoch ${t.epoch} after epoch ${newer.epoch} began (${t.wall - newer.first.wall} ms later)`, events: [newer.first, t] });
    }
  }

  if (o.faultsEndedAt !== undefined && o.leaderWithinMs !== undefined) {
    const at = leaderSeenAt(history, o.faultsEndedAt);
    if (at === null || at - o.faultsEndedAt > o.leaderWithinMs) {
      const coordinator = history.filter((t) => t.kind === 'coordinator').sort(byTime);
      out.push({
        invariant: 'no-leader', subject: 'leader',
        message: `no leader within ${o.leaderWithinMs} ms after the faults stopped${at === null ? '' : ` (first after ${at - o.faultsEndedAt} ms)`}`,
        events: coordinator.slice(-4),
      });
    }
  }

  out.push(...handlerOverlaps(history, jobs));
  return out;
}

/**
 * When a leader was first seen at or after `since`: a coordinator entering (or
 * cycling within) leadership under an epoch, or a leader confirming its lease
 * (acquired or renewed, every TTL/3) while its coordinator leads. A leader busy
 * in a long duty pass still renews; a dead or stopped one does not.
 */
export function leaderSeenAt(history: Transition[], since: number): number | null {
  const leading = new Map<string, boolean>();
  let first: number | null = null;
  for (const t of [...history].sort(byTime)) {
    if (t.kind === 'coordinator') leading.set(t.instance, t.to.startsWith('active.leader') && t.epoch !== null);
    if (t.wall < since || (first !== null && t.wall >= first)) continue;
    const acts = t.kind === 'coordinator' && leading.get(t.instance) === true;
    const confirms = t.kind === 'lease' && t.actor === `${t.node}-leader` && t.to === 'held.confirmed.waiting' && leading.get(t.instance) === true;
    if (acts || confirms) first = t.wall;
  }
  return first;
}

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
function handlerOverlaps(history: Transition[], jobs: Map<string, Transition[]>): Violation[] {
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
          invariant: 'handler-overlap', subject: id,
          message: `job ${id}'s handler ran on ${a.start.node} (attempt ${a.start.epoch}) and ${b.start.node} (attempt ${b.start.epoch}) at once for ${ms} ms while both held live node leases`,
          events: [a.start, ...(a.end ? [a.end] : []), b.start, ...(b.end ? [b.end] : [])],
        });
      }
    }
  }
  return out;
}
