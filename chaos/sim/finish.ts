// The end of a simulated case: the faults stop (every link heals, every paused
// process resumes, every dead node restarts), virtual time runs until every
// job is terminal and a leader exists (or the bound passes), and the checker
// judges the history.
import { isTerminal } from '../../machines/job.machine.ts';
import { recoverIntervalMs } from '../../machines/coordinator.machine.ts';
import type { JobRecord } from '../../api/contract.ts';
import { defaults, retryBackoffMs } from '../../base/defaults.ts';
import { decodeJob } from '../../store/job.store.ts';
import { keys } from '../../store/keys.ts';
import { checkHistory } from '../checker.ts';
import { leaderSeenAt } from '../invariants.leaders.ts';
import { simExpected, simJobMs } from './handlers.ts';
import type { SimWorld } from './world.ts';
import type { Transition } from '../../nats/events.ts';
import type { Violation } from '../history.ts';

/** Every job record, read straight from the server. */
export async function readRecords(w: SimWorld): Promise<JobRecord[]> {
  const out: JobRecord[] = [];
  for (const k of await w.buckets.jobs.keys(keys.jobs)) {
    const e = await w.buckets.jobs.get(k);
    if (e) out.push(decodeJob(e.value, keys.jobIdOf(k)));
  }
  return out;
}

/**
 * How long after the faults stop every job must be terminal: a dead holder's
 * lease expiring, a recovery pass, an assignment nobody started timing out,
 * then every attempt (placement, the job, a recovery pass) and the backoffs between.
 */
export function caseBoundMs(w: SimWorld): number {
  const t = w.timing;
  const longest = Math.max(0, ...[...w.submitted.values()].map((s) => simJobMs(s.type, s.input)));
  const recoverEvery = recoverIntervalMs(t);
  const attempt = longest + defaults.placeIntervalMs + defaults.bidWindowMs + recoverEvery;
  let backoffs = 0;
  for (let f = 1; f < defaults.maxAttempts; f++) backoffs += retryBackoffMs(f);
  return 2 * w.options.ttlMs + recoverEvery + defaults.startTimeoutMs + defaults.maxAttempts * attempt + backoffs;
}

/** What each revision of the jobs bucket held (its write log), for the checker. */
function committedIn(w: SimWorld) {
  const writes = w.buckets.jobs.writes;
  if (!writes) return undefined;
  return (revision: number) => {
    const e = writes.get(revision);
    if (!e || e.operation !== 'PUT') return null;
    try {
      const r = decodeJob(e.value, keys.jobIdOf(e.key));
      return { id: r.id, state: r.state, attempt: r.attempt, owner: r.owner };
    } catch {
      return null;
    }
  };
}

/** What a case ends with: the checker's verdict, recovery times, the final records and the whole history. */
export type CaseResult = {
  violations: Violation[];
  /** Virtual ms from the end of faults to the first leader action, and to every job terminal (null: not within the bound). */
  recovery: { leaderMs: number | null; allTerminalMs: number | null };
  boundMs: number;
  records: JobRecord[];
  history: Transition[];
};

/** Faults stop (every link heals, every paused process resumes, every dead node restarts); converge; check. */
export async function finishCase(w: SimWorld): Promise<CaseResult> {
  w.supervised = true;
  w.slots.forEach((_, i) => {
    const n = w.live(i);
    if (!n) return void w.restart(i);
    w.net.calm(n.conn);
    if (n.conn.split || n.conn.cut) w.net.heal(n.conn);
    if (n.view.paused) w.net.resume(n.conn);
  });
  await w.clock.advance(0);
  const faultsEndedAt = w.clock.now();
  const boundMs = caseBoundMs(w);
  const leaderWithinMs = w.options.ttlMs + w.timing.pollIntervalMs;
  let records: JobRecord[] = [];
  let allTerminalAt: number | null = null;
  let settled = false;
  while (!settled && w.clock.now() - faultsEndedAt < boundMs) {
    await w.clock.advance(25);
    records = await readRecords(w);
    // A submit whose serving node died is answered (with an error): its record, if the create landed, is here.
    const submitting = w.submitting();
    const terminal = !submitting && records.every(isTerminal);
    if (terminal && allTerminalAt === null) allTerminalAt = w.clock.now();
    if (!terminal) allTerminalAt = null;
    // Settled for a while: a submit whose API node died may have reached the dispatcher, whose create lands later.
    else if (w.clock.now() - allTerminalAt! >= 2 * defaults.placeIntervalMs && leaderSeenAt(w.history, faultsEndedAt) !== null) {
      // A little longer: late writes of resumed zombies land (and must be fenced). A late create (a submit whose API
      // node died, forwarded before it did) makes a new live job: then the case goes on, within the bound.
      await w.clock.advance(2 * w.timing.pollIntervalMs);
      records = await readRecords(w);
      settled = records.every(isTerminal);
      if (!settled) allTerminalAt = null;
    }
  }
  if (!settled) {
    await w.clock.advance(2 * w.timing.pollIntervalMs);
    records = await readRecords(w);
  }
  const violations = checkHistory(w.history, {
    records,
    expected: simExpected,
    expectAllTerminal: true,
    faultsEndedAt,
    leaderWithinMs,
    committed: committedIn(w),
  });
  for (const e of w.errors) violations.push({ invariant: 'uncaught-error', subject: 'process', message: e, events: [] });
  const leader = leaderSeenAt(w.history, faultsEndedAt);
  const lastTerminal = Math.max(
    faultsEndedAt,
    ...w.history.filter((t) => t.kind === 'job' && ['succeeded', 'failed', 'cancelled'].includes(t.to)).map((t) => t.wall),
  );
  return {
    violations,
    recovery: {
      leaderMs: leader === null ? null : leader - faultsEndedAt,
      allTerminalMs: records.every(isTerminal) && allTerminalAt !== null ? lastTerminal - faultsEndedAt : null,
    },
    boundMs,
    records,
    history: w.history,
  };
}
