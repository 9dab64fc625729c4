// A job's lifecycle. The record in the jobs bucket *is* this machine's
// persisted snapshot: every writer (API, leader, the node running it) reads
// the record, applies one event with the pure `transition`, and writes the
// result by CAS. Guards on owner and attempt are the fences.
import { type ActorScope, assertEvent, assign, createActor, setup, type SnapshotFrom } from 'xstate';

import type { AttemptEntry, AttemptOutcome, JobPhase, JobRecord, JobStateName, Requirements } from '../api/contract.ts';

/** What a submit decides about a job (the rest of its record starts neutral). */
export type JobSpec = Pick<JobRecord, 'id' | 'type' | 'input' | 'priority' | 'maxAttempts' | 'timeoutMs'> & {
  requires?: Requirements | null;
  pendingTimeoutMs?: number | null;
  retentionMs?: number | null;
  /** A delayed job: not placed before (wall ms). */
  notBefore?: number;
  /** The submitter's trace context. */
  trace?: JobRecord['trace'];
};

/** The machine's context: the record (api/contract.ts) less its state, which is the machine's state value. */
export type JobContext = Omit<JobRecord, 'state' | 'phase'>;

export type JobEvent =
  /**
   * `round`: the placement round that decided it (for the history: jobs placed in one round were chosen
   * together). `nodeEpoch`: the owner's node-lease term the assignment names; the attempt lives in that term only.
   */
  | { type: 'job.assign'; node: string; at: number; round?: string; nodeEpoch?: number | null }
  | { type: 'job.start'; node: string; attempt: number; resumedFrom: number; at: number; nodeEpoch?: number | null }
  | { type: 'job.phase'; attempt: number; phase: JobPhase; at: number }
  /** `checkpoint`: the progress comes from a committed checkpoint. */
  | { type: 'job.progress'; attempt: number; progress: number; at: number; checkpoint?: boolean }
  /** The leader's word on why no live node can take this queued job (null: one can again). */
  | { type: 'job.pending'; reason: string | null; at: number }
  | { type: 'job.succeed'; attempt: number; result: unknown; at: number }
  | { type: 'job.fail'; attempt: number; error: string; retryable: boolean; backoffMs: number; at: number }
  | { type: 'job.timeout'; attempt: number; backoffMs: number; at: number }
  /** Its owner's lease is gone: back to the queue, resume from the checkpoint. */
  | { type: 'job.orphan'; attempt: number; at: number }
  /** Assigned but not started in time. */
  | { type: 'job.unstarted'; attempt: number; at: number }
  /** Handed back by its owner (drain, preemption). */
  | { type: 'job.preempt'; attempt: number; at: number }
  | { type: 'job.cancel'; at: number }
  /** Refused before running (no node handles its type). */
  | { type: 'job.reject'; error: string; at: number };

/**
 * A job whose running attempts ended orphaned this many times (their node died
 * or lost its lease under them) fails as a poison job instead of touring the
 * fleet: the handler may be what takes its nodes down.
 */
export const orphanLimit = 10;
/** A record keeps its last this-many attempts (the first ones are dropped): records stay small. */
export const attemptsKept = 20;

/** Close the current attempt's entry. */
function endAttempt(ctx: JobContext, outcome: AttemptOutcome, at: number): AttemptEntry[] {
  return ctx.attempts.map((a) => (a.attempt === ctx.attempt && a.endedAt === null ? { ...a, endedAt: at, outcome } : a));
}

export const jobMachine = setup({
  types: {
    context: {} as JobContext,
    input: {} as JobSpec & { at: number },
    events: {} as JobEvent,
  },
  guards: {
    /** An event from the owner of the current attempt (the fence). */
    currentAttempt: ({ context, event }) => 'attempt' in event && event.attempt === context.attempt,
    /** The owner starts the current attempt, within the lease term its assignment named (if it named one). */
    ownerStarts: ({ context, event }) => {
      if (event.type !== 'job.start' || event.node !== context.owner || event.attempt !== context.attempt) return false;
      const term = context.attempts[context.attempts.length - 1]?.nodeEpoch;
      return typeof term !== 'number' || event.nodeEpoch === term;
    },
    /** This failure leaves attempts to retry. */
    retryLeft: ({ context, event }) =>
      'attempt' in event && event.attempt === context.attempt && context.failures + 1 < context.maxAttempts &&
      (event.type !== 'job.fail' || event.retryable),
    /** This orphaned attempt is the job's `orphanLimit`th: a poison job. */
    poisoned: ({ context, event }) => 'attempt' in event && event.attempt === context.attempt && (context.orphans ?? 0) + 1 >= orphanLimit,
    /** Not before its retry backoff ends, whatever a stale offer said. */
    backoffOver: ({ context, event }) => event.type === 'job.assign' && event.at >= context.notBefore,
    /** The leader's reason changes what the record says. */
    newReason: ({ context, event }) => event.type === 'job.pending' && event.reason !== context.pendingReason,
    isPhase: ({ context, event }, phase: JobPhase) =>
      event.type === 'job.phase' && event.attempt === context.attempt && event.phase === phase,
  },
  actions: {
    assignTo: assign(({ context, event }) => {
      assertEvent(event, 'job.assign');
      const attempt = context.attempt + 1;
      return {
        attempt,
        owner: event.node,
        pendingReason: null,
        pendingSince: null,
        checkpointedAt: null,
        updatedAt: event.at,
        attempts: [...context.attempts.slice(1 - attemptsKept), {
          attempt,
          node: event.node,
          assignedAt: event.at,
          startedAt: null,
          endedAt: null,
          resumedFrom: 0,
          outcome: null,
          ...(event.nodeEpoch === undefined ? {} : { nodeEpoch: event.nodeEpoch }),
        }],
      };
    }),
    recordStart: assign(({ context, event }) => {
      assertEvent(event, 'job.start');
      return {
        progress: event.resumedFrom,
        updatedAt: event.at,
        attempts: context.attempts.map((
          a,
        ) => (a.attempt === event.attempt
          ? {
            ...a,
            startedAt: event.at,
            resumedFrom: event.resumedFrom,
            outcome: 'running' as const,
            ...(event.nodeEpoch === undefined ? {} : { nodeEpoch: event.nodeEpoch }),
          }
          : a)
        ),
      };
    }),
    recordProgress: assign(({ event }) => {
      assertEvent(event, 'job.progress');
      return {
        progress: Math.min(1, Math.max(0, event.progress)),
        updatedAt: event.at,
        ...(event.checkpoint ? { checkpointedAt: event.at } : {}),
      };
    }),
    recordSuccess: assign(({ context, event }) => {
      assertEvent(event, 'job.succeed');
      return { result: event.result, error: null, progress: 1, updatedAt: event.at, attempts: endAttempt(context, 'succeeded', event.at) };
    }),
    recordFailure: assign(({ context, event }) => {
      assertEvent(event, ['job.fail', 'job.timeout']);
      const error = event.type === 'job.fail' ? event.error : `timed out after ${context.timeoutMs} ms`;
      return {
        error,
        failures: context.failures + 1,
        owner: null,
        notBefore: event.at + event.backoffMs,
        updatedAt: event.at,
        attempts: endAttempt(context, event.type === 'job.fail' ? 'failed' : 'timeout', event.at),
      };
    }),
    requeue: assign(({ context, event }) => {
      assertEvent(event, ['job.orphan', 'job.unstarted', 'job.preempt']);
      const outcome = event.type === 'job.orphan' ? 'orphaned' : event.type === 'job.unstarted' ? 'unstarted' : 'preempted';
      const preempted = outcome === 'preempted' ? { preemptions: context.preemptions + 1, preemptedAt: event.at } : {};
      return { owner: null, updatedAt: event.at, attempts: endAttempt(context, outcome, event.at), ...preempted };
    }),
    countOrphan: assign(({ context }) => ({ orphans: (context.orphans ?? 0) + 1 })),
    recordPoison: assign(({ context, event }) => {
      assertEvent(event, 'job.orphan');
      const orphans = (context.orphans ?? 0) + 1;
      return {
        orphans,
        owner: null,
        error: `poison job: ${orphans} attempts ended with their node gone while running it (last on ${context.owner}); ` +
          'its handler may be what stops its nodes',
        updatedAt: event.at,
        attempts: endAttempt(context, 'orphaned', event.at),
      };
    }),
    recordCancel: assign(({ context, event }) => {
      assertEvent(event, 'job.cancel');
      return { owner: null, error: 'cancelled', updatedAt: event.at, attempts: endAttempt(context, 'cancelled', event.at) };
    }),
    recordPending: assign(({ context, event }) => {
      assertEvent(event, 'job.pending');
      return {
        pendingReason: event.reason,
        pendingSince: event.reason === null ? null : context.pendingSince ?? event.at,
        updatedAt: event.at,
      };
    }),
    recordReject: assign(({ event }) => {
      assertEvent(event, 'job.reject');
      return { error: event.error, updatedAt: event.at };
    }),
  },
}).createMachine({
  id: 'job',
  context: ({ input }) => ({
    id: input.id,
    type: input.type,
    input: input.input,
    priority: input.priority,
    maxAttempts: input.maxAttempts,
    timeoutMs: input.timeoutMs,
    requires: input.requires ?? null,
    pendingTimeoutMs: input.pendingTimeoutMs ?? null,
    retentionMs: input.retentionMs ?? null,
    pendingReason: null,
    pendingSince: null,
    preemptions: 0,
    preemptedAt: null,
    orphans: 0,
    checkpointedAt: null,
    trace: input.trace ?? null,
    attempt: 0,
    owner: null,
    progress: 0,
    result: null,
    error: null,
    failures: 0,
    notBefore: input.notBefore ?? 0,
    createdAt: input.at,
    updatedAt: input.at,
    attempts: [],
  }),
  initial: 'queued',
  on: {
    'job.cancel': { target: '.cancelled', actions: 'recordCancel' },
  },
  states: {
    queued: {
      on: {
        // Not before its retry backoff ends, whatever a stale offer said.
        'job.assign': { guard: 'backoffOver', target: 'assigned', actions: 'assignTo' },
        'job.reject': { target: 'failed', actions: 'recordReject' },
        'job.pending': { guard: 'newReason', actions: 'recordPending' },
      },
    },
    assigned: {
      on: {
        'job.start': { guard: 'ownerStarts', target: 'running', actions: 'recordStart' },
        'job.unstarted': { guard: 'currentAttempt', target: 'queued', actions: 'requeue' },
        'job.orphan': { guard: 'currentAttempt', target: 'orphaned', actions: 'requeue' },
      },
    },
    running: {
      initial: 'computing',
      on: {
        'job.progress': { guard: 'currentAttempt', actions: 'recordProgress' },
        'job.succeed': { guard: 'currentAttempt', target: 'succeeded', actions: 'recordSuccess' },
        'job.fail': [
          { guard: 'retryLeft', target: 'queued', actions: 'recordFailure' },
          { guard: 'currentAttempt', target: 'failed', actions: 'recordFailure' },
        ],
        'job.timeout': [
          { guard: 'retryLeft', target: 'queued', actions: 'recordFailure' },
          { guard: 'currentAttempt', target: 'failed', actions: 'recordFailure' },
        ],
        'job.phase': [
          { guard: { type: 'isPhase', params: 'computing' }, target: '.computing' },
          { guard: { type: 'isPhase', params: 'ioWait' }, target: '.ioWait' },
          { guard: { type: 'isPhase', params: 'checkpointing' }, target: '.checkpointing' },
        ],
        'job.orphan': [
          { guard: 'poisoned', target: 'failed', actions: 'recordPoison' },
          { guard: 'currentAttempt', target: 'orphaned', actions: ['requeue', 'countOrphan'] },
        ],
        'job.preempt': { guard: 'currentAttempt', target: 'preempted', actions: 'requeue' },
      },
      states: {
        computing: {},
        ioWait: {},
        checkpointing: {},
      },
    },
    // Passing states, kept so the diagram and the history say why a job went back.
    orphaned: { always: 'queued' },
    preempted: { always: 'queued' },
    // A record in a final state is still given events (applyJobEvent); the machine-wide cancel must not rewrite it.
    succeeded: { type: 'final', on: { 'job.cancel': {} } },
    failed: { type: 'final', on: { 'job.cancel': {} } },
    cancelled: { type: 'final', on: { 'job.cancel': {} } },
  },
});

export type JobSnapshot = SnapshotFrom<typeof jobMachine>;

export function recordOf(s: JobSnapshot): JobRecord {
  const v = s.value;
  const state = (typeof v === 'string' ? v : Object.keys(v)[0]) as JobStateName;
  const phase = typeof v === 'object' && 'running' in v ? (v.running as JobPhase) : null;
  return { ...s.context, state, phase };
}

export function snapshotOf(r: JobRecord): JobSnapshot {
  const { state, phase, ...context } = r;
  return jobMachine.resolveState({ value: state === 'running' ? { running: phase ?? 'computing' } : state, context });
}

/**
 * One actor scope for every pure step of the job machine. XState's
 * `getNextSnapshot`/`initialTransition` build a whole inert actor per call
 * (~25 µs, most of a write's CPU on the hot path); every action of this
 * machine is an `assign`, resolved within the step, so nothing ever reaches
 * the scope's executor and sharing it is safe (a unit test holds it to that).
 */
const scope =
  (createActor(jobMachine, { input: { id: '', type: '', input: null, priority: 0, maxAttempts: 1, timeoutMs: 1, at: 0 } }) as unknown as {
    _actorScope: ActorScope<JobSnapshot, JobEvent>;
  })._actorScope;

export function newJobRecord(spec: JobSpec, at: number): JobRecord {
  return recordOf(jobMachine.getInitialSnapshot(scope as never, { ...spec, at }));
}

/** Apply one event; null when the machine does not accept it (stale attempt, terminal job...). */
export function applyJobEvent(r: JobRecord, e: JobEvent): JobRecord | null {
  const prev = snapshotOf(r);
  const snap = jobMachine.transition(prev, e, scope as never);
  if (snap === prev) return null; // no transition taken
  const next = recordOf(snap);
  return sameRecord(next, r) ? null : next;
}

/** A step that changed nothing keeps every value (assign builds new objects only for what it changes). */
function sameRecord(a: JobRecord, b: JobRecord): boolean {
  for (const k of Object.keys(a) as Array<keyof JobRecord>) {
    if (k !== 'attempts' && a[k] !== b[k]) return false;
  }
  return a.attempts.length === b.attempts.length && a.attempts.every((x, i) => x === b.attempts[i]);
}

/** The machine's final states: a record in one of them never changes again. */
export const terminalStates: readonly JobStateName[] = Object.entries(jobMachine.config.states ?? {})
  .filter(([, s]) => s.type === 'final')
  .map(([name]) => name as JobStateName);

export const isTerminal = (r: Pick<JobRecord, 'state'>) => terminalStates.includes(r.state);

/** The record's latest attempt (the current one while the job runs), if any. */
export function lastAttempt(r: Pick<JobRecord, 'attempts'>): AttemptEntry | undefined {
  return r.attempts[r.attempts.length - 1];
}
