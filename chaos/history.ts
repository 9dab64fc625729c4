// The history the checker reads, prepared once: every transition of every
// actor (deduplicated: a reader may see an event twice), each job's own events
// in time order, and the small helpers every invariant shares.
import type { JobRecord } from '../api/contract.ts';
import type { Transition } from '../nats/events.ts';

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
  /**
   * What a job record revision held, where the checker can know it (the simulation logs every write that landed):
   * then a handler start's cited revision is checked against it, not inferred from the recorded events.
   */
  committed?: (revision: number) => { id: string; state: string; attempt: number; owner: string | null } | null;
};

export type History = {
  /** Every transition once, in the order read. */
  all: Transition[];
  /** Each job's events, by time. */
  jobs: Map<string, Transition[]>;
};

export function prepare(all: Transition[]): History {
  // One event per process and sequence number, however often a reader saw it.
  const seen = new Set<string>();
  const history = all.filter((t) => {
    const key = `${t.instance}:${t.seq}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
  const jobs = new Map<string, Transition[]>();
  for (const t of history) if (t.kind === 'job') jobs.set(t.actor, [...(jobs.get(t.actor) ?? []), t]);
  for (const evs of jobs.values()) evs.sort(byTime);
  return { all: history, jobs };
}

export const terminal = (state: string) => state === 'succeeded' || state === 'failed' || state === 'cancelled';

export function byTime(a: Transition, b: Transition): number {
  return a.wall - b.wall || (a.instance === b.instance ? a.seq - b.seq : 0);
}

/**
 * What the harness itself saw, as transitions of the pseudo-process `harness`: a process it killed (`process.killed`,
 * `data.pid`), and what a client was answered (`client.submit`: the reply; `client.wait`: the record a wait returned).
 */
export function harnessRecorder(now: () => number) {
  let seq = 0;
  return (f: { kind: 'process' | 'client'; actor: string; event: string; data: Record<string, unknown> }): Transition => ({
    ...f,
    node: 'harness',
    instance: 'harness',
    pid: 0,
    from: null,
    to: f.event.split('.')[1]!,
    epoch: null,
    wall: now(),
    mono: now(),
    seq: ++seq,
  });
}
export const processKilled = 'process.killed';
export const clientSubmit = 'client.submit';
export const clientWait = 'client.wait';

/** When each killed process (by pid) died, as the harness recorded it. */
export function killTimes(h: History): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of h.all) if (t.event === processKilled && typeof t.data?.pid === 'number') out.set(t.data.pid, t.wall);
  return out;
}

/** The KV revision a write got (job records, checkpoints), when the history has it. */
export const revisionOf = (t: Transition): number | null => (typeof t.data?.revision === 'number' ? t.data.revision : null);

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
  'handler-in-term',
  'start-cites-assignment',
  'slots-bound',
  'created-has-record',
  'wait-equals-final',
  'priority-order',
  'type-wait',
  'no-leader',
  'not-terminal',
  /** Not from the history: the simulation saw code under test throw where a real process would have died. */
  'uncaught-error',
] as const;

export type Invariant = (typeof invariants)[number];

export type Violation = {
  invariant: Invariant;
  /** The job id, or `epoch <n>`. */
  subject: string;
  message: string;
  events: Transition[];
};
