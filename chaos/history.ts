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
  'priority-order',
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
