// The job's pure rules beside its machine: when the leader sends a job back to
// the queue (recovery), and which event an attempt's end writes (the runner).
// The machine then decides whether the record accepts that event.
import { type JobEvent, lastAttempt } from './job.machine.ts';
import type { JobRecord } from '../api/contract.ts';

/** Why recovery sends a job back to the queue, and with which event. */
export type Requeue = { event: Extract<JobEvent, { type: 'job.orphan' | 'job.unstarted' }>; why: string };

/**
 * Recovery's rule for one live record. `nodeEpochs` holds the node-lease
 * epoch of every node that holds a lease now. An owned job goes back
 * (`job.orphan`, resumed later from its checkpoint) when its owner has no
 * lease, or holds another lease term than the one its attempt lives in (named
 * by the assignment, or recorded at its start): lease loss is fail-stop, so
 * nothing runs that attempt any more. While that term lives, only the owner
 * moves the job. An assignment that named no term (the auction, centralized
 * and pull modes) and that nobody started within `startTimeoutMs` goes back as
 * `job.unstarted`.
 */
export function requeueDecision(
  r: JobRecord,
  nodeEpochs: ReadonlyMap<string, number>,
  now: number,
  startTimeoutMs: number,
): Requeue | null {
  if ((r.state !== 'assigned' && r.state !== 'running') || !r.owner) return null;
  const attempt = lastAttempt(r);
  const term = attempt?.nodeEpoch;
  const why = !nodeEpochs.has(r.owner)
    ? `owner ${r.owner} is gone`
    : typeof term === 'number' && nodeEpochs.get(r.owner) !== term
    ? `owner ${r.owner} lost the lease term (epoch ${term}) it ${r.state === 'running' ? 'ran' : 'was assigned'} under`
    : null;
  if (why) return { event: { type: 'job.orphan', attempt: r.attempt, at: now }, why };
  if (r.state === 'assigned' && typeof term !== 'number' && attempt && now - attempt.assignedAt > startTimeoutMs) {
    return { event: { type: 'job.unstarted', attempt: r.attempt, at: now }, why: `not started within ${startTimeoutMs} ms` };
  }
  return null;
}

/** Why a handler was stopped before it returned (`cut-off`: its node lost its link to NATS for a while). */
export type StopReason = 'cancelled' | 'preempted' | 'fenced' | 'timeout' | 'cut-off';

/** How an attempt's handler ended. */
export type HandlerOutcome =
  | { ok: true; result: unknown }
  /**
   * `fenced`: a write was refused for a newer attempt; `cancelled`: refused by a cancel's fence; `retryable`: false
   * for bad input and oversize checkpoints.
   */
  | { ok: false; error: string; retryable: boolean; fenced: boolean; cancelled?: boolean };

/**
 * The event an attempt's end writes, or null when it must write nothing: an
 * attempt stopped as fenced or cancelled (someone else already moved the record on).
 * A stop takes precedence over what the handler returned, except that a
 * preempted handler that still finished within its grace keeps its result.
 */
export function outcomeEvent(
  attempt: number,
  stop: StopReason | null,
  outcome: HandlerOutcome,
  backoffMs: number,
  at: number,
): JobEvent | null {
  if (stop === 'fenced' || stop === 'cancelled') return null;
  // A checkpoint refused by a cancel's fence: the owner writes the cancel too (a no-op once the canceller's landed).
  if (!outcome.ok && outcome.cancelled) return { type: 'job.cancel', at };
  // Stopped while cut off: the owner hands the attempt back (no failure) once it can write, if its term still lives.
  if (stop === 'cut-off') return { type: 'job.orphan', attempt, at };
  if (stop === 'preempted' && !outcome.ok) return { type: 'job.preempt', attempt, at };
  if (stop === 'timeout') return { type: 'job.timeout', attempt, backoffMs, at };
  if (outcome.ok) return { type: 'job.succeed', attempt, result: outcome.result, at };
  // A handler fenced by a write of its own (a checkpoint refused): fail the attempt, retryably. Were the record
  // someone else's now, the job machine refuses this for a stale attempt; were it still ours, it must not stay running.
  if (outcome.fenced) return { type: 'job.fail', attempt, error: `fenced: ${outcome.error}`, retryable: true, backoffMs, at };
  return { type: 'job.fail', attempt, error: outcome.error, retryable: outcome.retryable, backoffMs, at };
}
