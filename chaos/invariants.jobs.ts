// The job invariants: one small function each, over the prepared history and
// the final records (docs/design.md, Safety rules: per-record CAS, attempts fence
// owners, exactly one terminal state, checkpoints resumed).
import { defaults } from '../base/defaults.ts';
import { handlerStart, type Transition } from '../nats/events.ts';
import type { Violation } from './history.ts';
import { byTime, type CheckOptions, type History, revisionOf, terminal } from './history.ts';

/** Writes only the owner of the current attempt may make. */
const ownerWrites = new Set(['job.progress', 'job.phase', 'job.succeed', 'job.fail', 'job.timeout', 'job.preempt', 'job.checkpoint']);

const stateOf = (s: string) => s.split('.')[0]!;

/** A job reaches a terminal state once. */
export function oneTerminalState({ jobs }: History): Violation[] {
  const out: Violation[] = [];
  for (const [id, evs] of jobs) {
    const finals = evs.filter((t) => terminal(stateOf(t.to)) && (t.from === null || !terminal(stateOf(t.from))));
    if (finals.length > 1) {
      out.push({
        invariant: 'one-terminal-state',
        subject: id,
        message: `job ${id} reached a terminal state ${finals.length} times`,
        events: finals,
      });
    }
  }
  return out;
}

/** Per-record CAS is the law: each revision of a record is replaced by at most one write. */
export function lostUpdate({ jobs }: History): Violation[] {
  const out: Violation[] = [];
  for (const [id, evs] of jobs) {
    const byReplaced = new Map<number, Transition[]>();
    for (const t of evs) {
      const r = t.data?.replaced;
      if (typeof r === 'number') byReplaced.set(r, [...(byReplaced.get(r) ?? []), t]);
    }
    for (const [rev, ws] of byReplaced) {
      if (ws.length < 2) continue;
      out.push({
        invariant: 'lost-update',
        subject: id,
        message: `${ws.length} writes of job ${id} replaced revision ${rev} (${
          ws.map((w) => `${w.event} by ${w.node} → revision ${revisionOf(w)}`).join(', ')
        }): compare-and-swap let both through, so one was lost`,
        events: ws,
      });
    }
  }
  return out;
}

/**
 * Commit order of one job's writes, where the history has it (KV revisions):
 * a paused or cut-off writer reports late, but its write was fenced, or not,
 * when it landed.
 */
function commitOrder(evs: Transition[]) {
  /** The checkpoint revision each attempt's claim got (on its handler start). */
  const claims = new Map<number, number>();
  for (const t of evs) if (t.event === handlerStart && typeof t.data?.claimed === 'number') claims.set(t.epoch ?? 0, t.data.claimed);
  return {
    // A start written on its own, or carried by the attempt's first write of its own (one revision).
    starts: evs.filter((t) => t.event === 'job.start' || t.data?.started === true),
    checkpoints: evs.filter((t) => t.event === 'job.checkpoint'),
    /** Record write `t` landed after start `s` (job record revisions, else time). */
    recordAfter(t: Transition, s: Transition) {
      const a = revisionOf(t);
      const b = revisionOf(s);
      return a !== null && b !== null ? a > b : byTime(s, t) < 0;
    },
    /** Checkpoint `c` landed after the claim of start `s`'s attempt (checkpoint revisions, else after the start in time). */
    checkpointAfter(c: Transition, s: Transition) {
      const claimed = claims.get(s.epoch ?? 0);
      const r = revisionOf(c);
      return claimed !== undefined && r !== null ? r > claimed : byTime(s, c) < 0;
    },
  };
}

/** Owner writes from an attempt older than one already started were refused. */
export function fencedWrites({ jobs }: History): Violation[] {
  const out: Violation[] = [];
  for (const [id, evs] of jobs) {
    const c = commitOrder(evs);
    for (const t of evs) {
      if (!ownerWrites.has(t.event)) continue;
      const newer = c.starts.find((s) =>
        (s.epoch ?? 0) > (t.epoch ?? 0) && (t.event === 'job.checkpoint' ? c.checkpointAfter(t, s) : c.recordAfter(t, s))
      );
      if (newer) {
        out.push({
          invariant: 'fenced-writes',
          subject: id,
          message: `attempt ${t.epoch} of job ${id} wrote ${t.event} after attempt ${newer.epoch} started`,
          events: [newer, t],
        });
      }
    }
  }
  return out;
}

/** A resumed attempt starts at or above every checkpoint committed before it claimed the slot. */
export function resumeFromCheckpoint({ jobs }: History): Violation[] {
  const out: Violation[] = [];
  for (const [id, evs] of jobs) {
    const c = commitOrder(evs);
    for (const s of c.starts) {
      const resumedFrom = Number(s.data?.resumedFrom ?? 0);
      let best: Transition | null = null;
      for (const cp of c.checkpoints) {
        if ((cp.epoch ?? 0) >= (s.epoch ?? 0) || c.checkpointAfter(cp, s)) continue;
        if (!best || Number(cp.data?.progress ?? 0) > Number(best.data?.progress ?? 0)) best = cp;
      }
      const committed = Number(best?.data?.progress ?? 0);
      if (best && resumedFrom + 1e-9 < committed) {
        out.push({
          invariant: 'resume-from-checkpoint',
          subject: id,
          message:
            `attempt ${s.epoch} of job ${id} resumed from ${resumedFrom}, below the committed checkpoint ${committed} of attempt ${best.epoch}`,
          events: [best, s],
        });
      }
    }
  }
  return out;
}

const succeededAt = (h: History, id: string) => (h.jobs.get(id) ?? []).find((t) => t.to === 'succeeded' && t.from !== 'succeeded');

/** The result written when a job succeeded is the result it keeps. */
export function resultKept(h: History, options: CheckOptions): Violation[] {
  return (options.records ?? []).flatMap((r) => {
    const done = succeededAt(h, r.id);
    if (r.state !== 'succeeded' || !done || JSON.stringify(done.data?.result) === JSON.stringify(r.result)) return [];
    return [{
      invariant: 'result-kept',
      subject: r.id,
      message: `job ${r.id}'s result changed after it succeeded: ${JSON.stringify(done.data?.result)} → ${JSON.stringify(r.result)}`,
      events: [done],
    }];
  });
}

/** A job whose true result can be computed (primes) returned it. */
export function resultCorrect(h: History, options: CheckOptions): Violation[] {
  return (options.records ?? []).flatMap((r) => {
    const want = r.state === 'succeeded' ? options.expected?.(r.type, r.input) : undefined;
    if (want === undefined || JSON.stringify(want) === JSON.stringify(r.result)) return [];
    const done = succeededAt(h, r.id);
    return [{
      invariant: 'result-correct',
      subject: r.id,
      message: `job ${r.id} (${r.type}) returned ${JSON.stringify(r.result)}, expected ${JSON.stringify(want)}`,
      events: done ? [done] : [],
    }];
  });
}

/**
 * A type no live node handles for a moment (its only nodes restarting) is waited for: a job fails as an unknown
 * type only after its pending limit (its own `pendingTimeoutMs`, else `typeMissingTimeoutMs`), never at once.
 */
export function typeWait(h: History, options: CheckOptions): Violation[] {
  return (options.records ?? []).flatMap((r) => {
    const limitMs = r.pendingTimeoutMs ?? defaults.typeMissingTimeoutMs;
    if (r.state !== 'failed' || !/unknown job type/.test(r.error ?? '') || r.updatedAt - r.createdAt >= limitMs) return [];
    return [{
      invariant: 'type-wait',
      subject: r.id,
      message: `job ${r.id} (${r.type}) failed as an unknown type ${
        r.updatedAt - r.createdAt
      } ms after it was submitted (limit ${limitMs} ms): ${r.error}`,
      events: (h.jobs.get(r.id) ?? []).slice(-3),
    }];
  });
}

/** After the faults stopped and the bound passed, no job is left unfinished. */
export function notTerminal(h: History, options: CheckOptions): Violation[] {
  if (!options.expectAllTerminal) return [];
  return (options.records ?? []).filter((r) => !terminal(r.state)).map((r) => ({
    invariant: 'not-terminal',
    subject: r.id,
    message: `job ${r.id} is still ${r.state} (attempt ${r.attempt}, owner ${r.owner})`,
    events: (h.jobs.get(r.id) ?? []).slice(-3),
  }));
}
