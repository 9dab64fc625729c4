// The history checker: reads the events history (every machine transition
// and every job record write) plus the final job records, and reports each
// broken invariant with the job or epoch and the events that break it. One
// small function per invariant (invariants.*.ts); `invariants` is the index.
// Pure and runtime-neutral: the simulation and the real-process chaos runs use the same one.
import type { Transition } from '../nats/events.ts';
import { type CheckOptions, type History, type Invariant, invariants, prepare, type Violation } from './history.ts';
import {
  fencedWrites,
  lostUpdate,
  notTerminal,
  oneTerminalState,
  resultCorrect,
  resultKept,
  resumeFromCheckpoint,
  typeWait,
} from './invariants.jobs.ts';
import { epochsIncrease, noLeader, oneLeaderPerEpoch, staleLeaderActed } from './invariants.leaders.ts';
import { handlerInTerm, handlerOverlap, slotsBound, startCitesAssignment } from './invariants.handlers.ts';
import { createdHasRecord, waitEqualsFinal } from './invariants.client.ts';
import { priorityOrder } from './invariants.priority.ts';

/** The function that judges each invariant the history can show. */
const checks: Record<Exclude<Invariant, 'uncaught-error'>, (h: History, options: CheckOptions) => Violation[]> = {
  'one-terminal-state': oneTerminalState,
  'lost-update': lostUpdate,
  'result-kept': resultKept,
  'result-correct': resultCorrect,
  'fenced-writes': fencedWrites,
  'resume-from-checkpoint': resumeFromCheckpoint,
  'one-leader-per-epoch': oneLeaderPerEpoch,
  'epochs-increase': epochsIncrease,
  'stale-leader-acted': staleLeaderActed,
  'handler-overlap': handlerOverlap,
  'handler-in-term': handlerInTerm,
  'start-cites-assignment': startCitesAssignment,
  'slots-bound': slotsBound,
  'created-has-record': createdHasRecord,
  'wait-equals-final': waitEqualsFinal,
  'priority-order': priorityOrder,
  'type-wait': typeWait,
  'no-leader': noLeader,
  'not-terminal': notTerminal,
};

export function checkHistory(all: Transition[], options: CheckOptions = {}): Violation[] {
  const h = prepare(all);
  return invariants.flatMap((i) => (i === 'uncaught-error' ? [] : checks[i](h, options)));
}
