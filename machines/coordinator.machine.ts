// The coordinator candidate every node hosts: it competes for the `leader`
// lease and, while it holds it, runs the leader's duties (recovery, placement).
// It is leader only between its lease reporting `acquired` and `lost`.
import { assertEvent, assign, fromCallback, fromPromise, sendParent, sendTo, setup } from 'xstate';
import { type LeaseInput, leaseMachine, type LeaseReport } from './lease.machine.ts';
import type { LeaseTiming } from './lease.rules.ts';

export type CoordinatorInput = { nodeId: string; lease: LeaseInput };

/** How often the leader runs a recovery pass. */
export const recoverIntervalMs = (timing: LeaseTiming) => 5 * timing.pollIntervalMs;

export type CoordinatorContext = CoordinatorInput & {
  epoch: number | null;
  /** Lease validity (monotonic ms) as last reported by the lease. */
  validUntil: number | null;
  leaderId: string | null;
};

export type CoordinatorEvent =
  | { type: 'start' }
  | { type: 'stop' }
  /** The node's NATS connection dropped, or came back. */
  | { type: 'connection.lost' }
  | { type: 'connection.restored' }
  | LeaseReport;

export type DutyInput = { nodeId: string; epoch: number };

export type CoordinatorReport = { type: 'coordinator.stopped' };

export const coordinatorMachine = setup({
  types: {
    context: {} as CoordinatorContext,
    input: {} as CoordinatorInput,
    events: {} as CoordinatorEvent,
  },
  actors: {
    leaderLease: leaseMachine,
    /** One pass of recovery: requeue what dead nodes held, reap dead node leases. */
    recover: fromPromise<void, DutyInput>(async () => {}),
    /** Placement loop; runs for as long as the coordinator is placing. */
    place: fromCallback<CoordinatorEvent, DutyInput>(() => () => {}),
  },
  delays: {
    /** Recovery (requeue dead nodes' jobs) runs this often while leading. */
    recoverInterval: ({ context }) => recoverIntervalMs(context.lease.timing),
    releaseTimeout: ({ context }) => context.lease.timing.ttlMs,
  },
  guards: {
    /**
     * Must be provided by the caller with a real clock: a paused process can
     * wake with timers overdue, and must not act before it learns of the loss.
     */
    leaseValid: () => false,
    /** Valid and confirmed lately (`leaseFreshAt`): provided by the caller with a real clock. */
    leaseFresh: () => false,
  },
  actions: {
    recordLeadership: assign(({ context, event }) => {
      assertEvent(event, 'lease.acquired');
      return { epoch: event.epoch, validUntil: event.validUntil, leaderId: context.nodeId };
    }),
    recordRenewal: assign(({ event }) => {
      assertEvent(event, 'lease.renewed');
      return { validUntil: event.validUntil };
    }),
    recordFollowing: assign(({ event }) => ({
      epoch: null,
      validUntil: null,
      leaderId: event.type === 'lease.standby' ? event.holder.id : null,
    })),
    forgetLeadership: assign({ epoch: null, validUntil: null, leaderId: null }),
    releaseLease: sendTo('leaderLease', { type: 'release' }),
    renewLease: sendTo('leaderLease', { type: 'renew' }),
    reportStopped: sendParent({ type: 'coordinator.stopped' } satisfies CoordinatorReport),
  },
}).createMachine({
  id: 'coordinator',
  context: ({ input }) => ({ ...input, epoch: null, validUntil: null, leaderId: null }),
  initial: 'idle',
  states: {
    idle: {
      on: {
        start: 'active',
        stop: { actions: 'reportStopped' },
      },
    },
    active: {
      invoke: { id: 'leaderLease', src: 'leaderLease', input: ({ context }) => context.lease },
      initial: 'candidate',
      on: { stop: '.steppingDown' },
      states: {
        candidate: {
          on: {
            'lease.acquired': { target: 'leader', actions: 'recordLeadership' },
            'lease.standby': { target: 'follower', actions: 'recordFollowing' },
          },
        },
        follower: {
          on: {
            'lease.acquiring': 'candidate',
            'lease.standby': { actions: 'recordFollowing' },
          },
        },
        leader: {
          initial: 'recovering',
          on: {
            'lease.renewed': { actions: 'recordRenewal' },
            // A new term: run recovery again under the new epoch.
            'lease.acquired': { target: 'leader', reenter: true, actions: 'recordLeadership' },
            // Any other report means the lease is not held: stop acting at once.
            'lease.lost': { target: 'follower', actions: 'forgetLeadership' },
            'lease.released': { target: 'follower', actions: 'forgetLeadership' },
            'lease.standby': { target: 'follower', actions: 'recordFollowing' },
            'lease.acquiring': { target: 'candidate', actions: 'forgetLeadership' },
            'connection.lost': '.suspended',
          },
          states: {
            recovering: {
              invoke: {
                src: 'recover',
                input: ({ context }) => ({ nodeId: context.nodeId, epoch: context.epoch ?? 0 }),
                onDone: 'placing',
                onError: 'placing',
              },
            },
            placing: {
              invoke: {
                src: 'place',
                input: ({ context }) => ({ nodeId: context.nodeId, epoch: context.epoch ?? 0 }),
              },
              after: {
                recoverInterval: [
                  { guard: 'leaseFresh', target: 'recovering' },
                  // Valid by our clock, but not confirmed lately (this process stalled): confirm it before a pass.
                  { guard: 'leaseValid', target: '#coordinator.active.leader.suspended.confirming' },
                ],
              },
            },
            // Without a connection, followers see "no responders" and may take the lease
            // at once (the fast path) while our own clock still trusts it: no duties until
            // a renewal after reconnecting confirms the lease is still ours.
            suspended: {
              initial: 'disconnected',
              on: { 'connection.lost': '.disconnected' },
              states: {
                disconnected: { on: { 'connection.restored': 'confirming' } },
                confirming: {
                  entry: 'renewLease',
                  on: { 'lease.renewed': { target: '#coordinator.active.leader.recovering', actions: 'recordRenewal' } },
                },
              },
            },
          },
        },
        steppingDown: {
          entry: ['forgetLeadership', 'releaseLease'],
          on: {
            'lease.released': { target: '#coordinator.idle', actions: 'reportStopped' },
          },
          after: { releaseTimeout: { target: '#coordinator.idle', actions: 'reportStopped' } },
        },
      },
    },
  },
});
