// A lease on one KV key (the leader lease, or a node's liveness lease), as a
// pure machine. The caller provides the KV effects; the machine decides when
// to acquire, renew, take over and give up, and tells its parent.
import { assign, fromCallback, fromPromise, sendParent, setup } from 'xstate';
import { type LeaseTiming, validUntilOf } from './lease.rules.ts';

/** Who holds a lease: a node id plus the process instance that wrote it. */
export type LeaseHolder = { id: string; instance: string };

export type LeaseInput = { key: string; holder: LeaseHolder; timing: LeaseTiming };

/** What an acquire attempt reports. Times are monotonic milliseconds. */
export type AcquireOutcome =
  | { type: 'acquired'; revision: number; sentAt: number; receivedAt: number }
  | { type: 'taken'; revision: number; holder: LeaseHolder }
  | { type: 'failed'; message: string };

export type RenewOutcome =
  | { type: 'renewed'; revision: number; sentAt: number; receivedAt: number }
  /** The key moved on (someone else took it, or it expired): the lease is gone. */
  | { type: 'conflict'; message: string }
  /**
   * The revision moved, but to our own value: an earlier renewal that timed
   * out had landed. Adopt the revision; validity is not extended by it (we do
   * not know when it landed), the next renewal extends it.
   */
  | { type: 'ours'; revision: number }
  /** No verdict (timeout, disconnected): retry while the deadline allows. */
  | { type: 'failed'; message: string };

export type AcquireRequest = { key: string; holder: LeaseHolder; takeoverRevision: number | null };
export type RenewRequest = { key: string; holder: LeaseHolder; revision: number; epoch: number };
export type WatchRequest = { key: string };
export type ProbeRequest = { key: string; other: { holder: LeaseHolder; revision: number } | null; pollIntervalMs: number; ttlMs: number };

export type LeaseEvent =
  | { type: 'release' }
  /** Renew now (the holder's advertised value changed). */
  | { type: 'renew' }
  /** The key was deleted or purged (graceful release by its holder). */
  | { type: 'key.freed' }
  /**
   * The holder is gone: its connection closed ("no responders" to its ping),
   * or the prober saw the same revision unrenewed for a whole TTL of its own
   * clock. Take over exactly this revision by CAS.
   */
  | { type: 'holder.gone'; revision: number }
  /** Another holder (or a new term of the same one) now has the key. */
  | { type: 'holder.changed'; holder: LeaseHolder; revision: number }
  /** The holder answered its ping. */
  | { type: 'holder.alive' };

/** Events a lease sends to its parent. */
export type LeaseReport =
  | { type: 'lease.acquiring'; key: string }
  | { type: 'lease.acquired'; key: string; epoch: number; validUntil: number }
  | { type: 'lease.renewed'; key: string; epoch: number; validUntil: number }
  | { type: 'lease.standby'; key: string; holder: LeaseHolder }
  | { type: 'lease.lost'; key: string; epoch: number | null; reason: string }
  | { type: 'lease.released'; key: string };

export type LeaseContext = LeaseInput & {
  /** Revision of our last confirmed write. */
  revision: number | null;
  /** Fencing token: the revision that acquired the lease. */
  epoch: number | null;
  /** Monotonic time after which we must not act on this lease. */
  validUntil: number | null;
  /** Monotonic time the last confirmation arrived (to arm the deadline). */
  confirmedAt: number | null;
  takeoverRevision: number | null;
  other: { holder: LeaseHolder; revision: number } | null;
  lastError: string | null;
};

const notImplemented = (what: string) => () => {
  throw new Error(`lease machine: effect '${what}' must be provided`);
};

/**
 * `assertEvent` for an effect's outcome (the output of its done event, which
 * reaches an action as its params): narrows it to `type`, and throws if the
 * transition's guard did not check it.
 */
function assertOutcome<O extends { type: string }, T extends O['type']>(
  outcome: O,
  type: T,
): asserts outcome is Extract<O, { type: T }> {
  if (outcome.type !== type) throw new Error(`lease machine: expected a '${type}' outcome, got ${JSON.stringify(outcome)}`);
}

/** What a failed effect says: the message of a `failed` or `conflict` outcome, or of the error it threw. */
const outcomeMessage = (outcome: AcquireOutcome | RenewOutcome) => ('message' in outcome ? outcome.message : 'unknown');

/** Did a confirmed write's answer arrive before the validity it grants (from when it was sent) was over? */
const inTime = (context: LeaseContext, outcome: { sentAt: number; receivedAt: number }) =>
  outcome.receivedAt < validUntilOf(context.timing, outcome.sentAt);

/** What a late answer records as the failure. */
const lateMessage = (outcome: AcquireOutcome | RenewOutcome) =>
  'receivedAt' in outcome
    ? `confirmed ${outcome.receivedAt - outcome.sentAt} ms after it was sent, past its validity (paused?)`
    : 'confirmed too late';
const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error ?? 'unknown'));

export const leaseMachine = setup({
  types: {
    context: {} as LeaseContext,
    input: {} as LeaseInput,
    events: {} as LeaseEvent,
  },
  actors: {
    acquireLease: fromPromise<AcquireOutcome, AcquireRequest>(notImplemented('acquireLease')),
    renewLease: fromPromise<RenewOutcome, RenewRequest>(notImplemented('renewLease')),
    releaseLease: fromPromise<void, RenewRequest>(notImplemented('releaseLease')),
    /** Runs for the actor's life: sends key.freed when the key is deleted or purged. */
    watchKey: fromCallback<LeaseEvent, WatchRequest>(() => () => {}),
    /**
     * Runs while standing by: pings the holder (holder.gone, holder.alive) and
     * polls the key (key.freed once it expired, holder.changed).
     */
    probeHolder: fromCallback<LeaseEvent, ProbeRequest>(() => () => {}),
  },
  delays: {
    renewInterval: ({ context }) => context.timing.renewIntervalMs,
    pollInterval: ({ context }) => context.timing.pollIntervalMs,
    retryInterval: ({ context }) => context.timing.retryIntervalMs,
    /** A follower's backstop in case its prober is silent: try again anyway. */
    standbyTimeout: ({ context }) => 5 * context.timing.ttlMs,
    /** Time left before the margin, counted from the confirmation's arrival. */
    untilDeadline: ({ context }) => Math.max(0, (context.validUntil ?? 0) - (context.confirmedAt ?? 0)),
  },
  guards: {
    // On an effect's outcome, given as params by the transition (see `acquiring` and `renewing`).
    /**
     * Acquired, and its answer arrived while the term was still valid. An answer that arrives later (the process
     * was paused while the write landed) names a term that may already be someone else's: it is not acted on.
     */
    acquired: ({ context }, { outcome }: { outcome: AcquireOutcome }) => outcome.type === 'acquired' && inTime(context, outcome),
    acquiredLate: (_, { outcome }: { outcome: AcquireOutcome }) => outcome.type === 'acquired',
    heldByStaleSelf: ({ context }, { outcome }: { outcome: AcquireOutcome }) =>
      outcome.type === 'taken' && outcome.holder.instance === context.holder.instance,
    taken: (_, { outcome }: { outcome: AcquireOutcome }) => outcome.type === 'taken',
    renewed: ({ context }, { outcome }: { outcome: RenewOutcome }) => outcome.type === 'renewed' && inTime(context, outcome),
    renewedLate: (_, { outcome }: { outcome: RenewOutcome }) => outcome.type === 'renewed',
    conflict: (_, { outcome }: { outcome: RenewOutcome }) => outcome.type === 'conflict',
    ours: (_, { outcome }: { outcome: RenewOutcome }) => outcome.type === 'ours',
    goneHolderKnown: ({ context, event }) => event.type === 'holder.gone' && context.other !== null,
    /** The key turned out to hold our own value: an acquire that got no answer in time had landed. */
    changedToSelf: ({ context, event }) => event.type === 'holder.changed' && event.holder.instance === context.holder.instance,
  },
  actions: {
    recordAcquired: assign(({ context }, { outcome }: { outcome: AcquireOutcome }) => {
      assertOutcome(outcome, 'acquired');
      return {
        revision: outcome.revision,
        epoch: outcome.revision,
        validUntil: validUntilOf(context.timing, outcome.sentAt),
        confirmedAt: outcome.receivedAt,
        takeoverRevision: null,
        other: null,
        lastError: null,
      };
    }),
    recordRenewed: assign(({ context }, { outcome }: { outcome: RenewOutcome }) => {
      assertOutcome(outcome, 'renewed');
      return {
        revision: outcome.revision,
        validUntil: validUntilOf(context.timing, outcome.sentAt),
        confirmedAt: outcome.receivedAt,
        lastError: null,
      };
    }),
    adoptRevision: assign((_, { outcome }: { outcome: RenewOutcome }) => {
      assertOutcome(outcome, 'ours');
      return { revision: outcome.revision };
    }),
    recordTaken: assign((_, { outcome }: { outcome: AcquireOutcome }) => {
      assertOutcome(outcome, 'taken');
      return { other: { holder: outcome.holder, revision: outcome.revision }, takeoverRevision: null };
    }),
    planSelfTakeover: assign((_, { outcome }: { outcome: AcquireOutcome }) => {
      assertOutcome(outcome, 'taken');
      return { takeoverRevision: outcome.revision };
    }),
    /** Take over only the revision the prober saw: a renewal since then wins the CAS. */
    planTakeover: assign(({ event }) => ({
      takeoverRevision: event.type === 'holder.gone' || event.type === 'holder.changed' ? event.revision : null,
    })),
    recordChanged: assign((
      { event },
    ) => (event.type === 'holder.changed' ? { other: { holder: event.holder, revision: event.revision } } : {})),
    /** The message of a failed outcome (`outcomeMessage`) or of a thrown error (`errorMessage`). */
    recordFailure: assign((_, { message }: { message: string }) => ({ lastError: message })),
    forget: assign({ revision: null, epoch: null, validUntil: null, confirmedAt: null, takeoverRevision: null, other: null }),
    reportAcquiring: sendParent(({ context }): LeaseReport => ({ type: 'lease.acquiring', key: context.key })),
    reportAcquired: sendParent(({ context }): LeaseReport => ({
      type: 'lease.acquired',
      key: context.key,
      epoch: context.epoch ?? 0,
      validUntil: context.validUntil ?? 0,
    })),
    reportRenewed: sendParent(({ context }): LeaseReport => ({
      type: 'lease.renewed',
      key: context.key,
      epoch: context.epoch ?? 0,
      validUntil: context.validUntil ?? 0,
    })),
    reportStandby: sendParent(({ context }): LeaseReport => ({
      type: 'lease.standby',
      key: context.key,
      holder: context.other?.holder ?? { id: '?', instance: '?' },
    })),
    reportLost: sendParent(({ context }): LeaseReport => ({
      type: 'lease.lost',
      key: context.key,
      epoch: context.epoch,
      reason: context.lastError ?? 'deadline passed',
    })),
    reportReleased: sendParent(({ context }): LeaseReport => ({ type: 'lease.released', key: context.key })),
  },
}).createMachine({
  id: 'lease',
  context: ({ input }) => ({
    ...input,
    revision: null,
    epoch: null,
    validUntil: null,
    confirmedAt: null,
    takeoverRevision: null,
    other: null,
    lastError: null,
  }),
  initial: 'acquiring',
  invoke: { src: 'watchKey', input: ({ context }) => ({ key: context.key }) },
  on: { release: '.released' },
  states: {
    acquiring: {
      entry: 'reportAcquiring',
      invoke: {
        src: 'acquireLease',
        input: ({ context }) => ({ key: context.key, holder: context.holder, takeoverRevision: context.takeoverRevision }),
        onDone: [
          {
            guard: { type: 'acquired', params: ({ event }) => ({ outcome: event.output }) },
            target: 'held',
            actions: { type: 'recordAcquired', params: ({ event }) => ({ outcome: event.output }) },
          },
          // Written, but known only after the term it grants was over: take it over afresh (standby sees our own value).
          {
            guard: { type: 'acquiredLate', params: ({ event }) => ({ outcome: event.output }) },
            target: 'standby',
            actions: [
              { type: 'recordFailure', params: ({ event }) => ({ message: lateMessage(event.output) }) },
              assign({ other: null, takeoverRevision: null }),
            ],
          },
          // Our own earlier incarnation's value (we were fenced): replace it by CAS.
          {
            guard: { type: 'heldByStaleSelf', params: ({ event }) => ({ outcome: event.output }) },
            target: 'acquiring',
            reenter: true,
            actions: { type: 'planSelfTakeover', params: ({ event }) => ({ outcome: event.output }) },
          },
          {
            guard: { type: 'taken', params: ({ event }) => ({ outcome: event.output }) },
            target: 'standby',
            actions: { type: 'recordTaken', params: ({ event }) => ({ outcome: event.output }) },
          },
          {
            target: 'standby',
            actions: [
              { type: 'recordFailure', params: ({ event }) => ({ message: outcomeMessage(event.output) }) },
              assign({ other: null, takeoverRevision: null }),
            ],
          },
        ],
        onError: {
          target: 'standby',
          actions: [
            { type: 'recordFailure', params: ({ event }) => ({ message: errorMessage(event.error) }) },
            assign({ other: null, takeoverRevision: null }),
          ],
        },
      },
    },
    // Standing by stays one state while the holder lives: polling and pings
    // are the prober's, so followers add no transitions to the history.
    standby: {
      invoke: {
        src: 'probeHolder',
        input: ({ context }) => ({
          key: context.key,
          other: context.other,
          pollIntervalMs: context.timing.pollIntervalMs,
          ttlMs: context.timing.ttlMs,
        }),
      },
      after: { standbyTimeout: 'acquiring' },
      on: {
        'key.freed': 'acquiring',
        'holder.gone': { guard: 'goneHolderKnown', target: 'acquiring', actions: 'planTakeover' },
        'holder.alive': { actions: 'reportStandby' },
        'holder.changed': [
          // Our own value (an acquire that timed out had landed): replace it by CAS, as after a fence.
          { guard: 'changedToSelf', target: 'acquiring', actions: 'planTakeover' },
          // Restart the prober on the new holder.
          { target: 'standby', reenter: true, actions: 'recordChanged' },
        ],
      },
    },
    held: {
      entry: 'reportAcquired',
      initial: 'confirmed',
      on: { release: '.releasing' },
      states: {
        // Re-entered after every confirmed renewal, which re-arms the deadline.
        confirmed: {
          after: { untilDeadline: '#lease.lost' },
          initial: 'waiting',
          states: {
            waiting: { after: { renewInterval: 'renewing' }, on: { renew: 'renewing' } },
            renewing: {
              invoke: {
                src: 'renewLease',
                input: ({ context }) => ({
                  key: context.key,
                  holder: context.holder,
                  revision: context.revision ?? 0,
                  epoch: context.epoch ?? 0,
                }),
                onDone: [
                  {
                    guard: { type: 'renewed', params: ({ event }) => ({ outcome: event.output }) },
                    target: '#lease.held.confirmed',
                    reenter: true,
                    actions: [{ type: 'recordRenewed', params: ({ event }) => ({ outcome: event.output }) }, 'reportRenewed'],
                  },
                  {
                    guard: { type: 'renewedLate', params: ({ event }) => ({ outcome: event.output }) },
                    target: '#lease.lost',
                    actions: { type: 'recordFailure', params: ({ event }) => ({ message: lateMessage(event.output) }) },
                  },
                  {
                    guard: { type: 'conflict', params: ({ event }) => ({ outcome: event.output }) },
                    target: '#lease.lost',
                    actions: { type: 'recordFailure', params: ({ event }) => ({ message: outcomeMessage(event.output) }) },
                  },
                  {
                    guard: { type: 'ours', params: ({ event }) => ({ outcome: event.output }) },
                    target: 'renewing',
                    reenter: true,
                    actions: { type: 'adoptRevision', params: ({ event }) => ({ outcome: event.output }) },
                  },
                  {
                    target: 'backingOff',
                    actions: { type: 'recordFailure', params: ({ event }) => ({ message: outcomeMessage(event.output) }) },
                  },
                ],
                onError: {
                  target: 'backingOff',
                  actions: { type: 'recordFailure', params: ({ event }) => ({ message: errorMessage(event.error) }) },
                },
              },
            },
            backingOff: { after: { retryInterval: 'renewing' } },
          },
        },
        releasing: {
          invoke: {
            src: 'releaseLease',
            input: ({ context }) => ({
              key: context.key,
              holder: context.holder,
              revision: context.revision ?? 0,
              epoch: context.epoch ?? 0,
            }),
            onDone: '#lease.released',
            // The TTL removes it anyway; a release that fails loses nothing.
            onError: {
              target: '#lease.released',
              actions: { type: 'recordFailure', params: ({ event }) => ({ message: errorMessage(event.error) }) },
            },
          },
        },
      },
    },
    lost: {
      entry: ['reportLost', 'forget'],
      after: { pollInterval: 'acquiring' },
    },
    released: {
      type: 'final',
      entry: ['reportReleased', 'forget'],
    },
  },
});
