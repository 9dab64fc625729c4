// The node actor: one per worker process. It holds the node's liveness lease,
// hosts a coordinator candidate, and (next) the job actors. Losing the lease
// is fail-stop: the node is fenced, stops its coordinator, then re-joins.
import { assertEvent, assign, fromPromise, sendTo, setup, type SnapshotFrom } from 'xstate';
import { coordinatorMachine, type CoordinatorReport } from './coordinator.machine.ts';
import { type LeaseHolder, leaseMachine, type LeaseReport } from './lease.machine.ts';
import type { LeaseTiming } from './lease.rules.ts';

export type NodeInput = {
  nodeId: string;
  instance: string;
  /** The KV keys of this node's liveness lease and of the leader lease (the caller owns the key layout). */
  leaseKeys: { node: string; leader: string };
};

export type BootstrapOutput = { timing: LeaseTiming };

export type NodeContext = NodeInput & {
  timing: LeaseTiming | null;
  /** Fencing token of the node lease currently held. */
  epoch: number | null;
  error: string | null;
  /** Told to stop (drain): once fenced it does not re-join. */
  stopping: boolean;
};

export type NodeEvent =
  | { type: 'drain' }
  | { type: 'nats.disconnected' }
  | { type: 'nats.reconnected' }
  | LeaseReport
  | CoordinatorReport;

export const nodeMachine = setup({
  types: {
    context: {} as NodeContext,
    input: {} as NodeInput,
    events: {} as NodeEvent,
  },
  actors: {
    bootstrap: fromPromise<BootstrapOutput, NodeInput>(async () => {
      throw new Error("node machine: effect 'bootstrap' must be provided");
    }),
    nodeLease: leaseMachine,
    coordinator: coordinatorMachine,
    /** Stop running jobs and hand them back to the queue (drain). */
    handBackJobs: fromPromise<void>(async () => {}),
  },
  guards: {
    stopping: ({ context }) => context.stopping,
  },
  delays: {
    // Both are used only while running, that is after bootstrap gave the timing.
    rejoinDelay: ({ context }) => context.timing!.pollIntervalMs,
    releaseTimeout: ({ context }) => context.timing!.ttlMs,
    drainDeadline: ({ context }) => context.timing!.drainDeadlineMs,
    /** How long the link may be down before running handlers are stopped (the caller provides it with its recovery grace). */
    cutOffFence: 250,
  },
  actions: {
    // Bootstrap's outcome, given as params by `starting` (its done and error events are not NodeEvents).
    recordBootstrap: assign((_, { timing }: BootstrapOutput) => ({ timing })),
    recordError: assign((_, { error }: { error: unknown }) => ({ error: error instanceof Error ? error.message : String(error) })),
    recordJoined: assign(({ event }) => {
      assertEvent(event, 'lease.acquired');
      return { epoch: event.epoch, error: null };
    }),
    recordDuplicate: assign(({ context, event }) => {
      assertEvent(event, 'lease.standby');
      return {
        error: `node id '${context.nodeId}' is in use by a live process (instance ${event.holder.instance}); pick another --id`,
      };
    }),
    recordStopping: assign({ stopping: true }),
    recordDrainTimeout: assign(({ context }) => ({
      error: `could not hand back its jobs within ${context.timing!.drainDeadlineMs} ms (the leader requeues what is left)`,
    })),
    recordFenced: assign(({ event }) => {
      assertEvent(event, 'lease.lost');
      return { epoch: null, error: `node lease lost: ${event.reason}` };
    }),
    /** Lease lost: abort every running job; they write nothing more. */
    abortJobs: () => {},
    /**
     * Cut off from NATS for `cutOffFence`: stop every running handler (each hands its attempt back once it can
     * write). The leader may have reaped this node's lease term meanwhile and moves its jobs after a grace longer
     * than this, so a cut-off node's handler never overlaps the next attempt's.
     */
    stopJobsCutOff: () => {},
    /** Back in contact: start the jobs assigned to this node that waited for the link. */
    resumeJobs: () => {},
    startCoordinator: sendTo('coordinator', { type: 'start' }),
    stopCoordinator: sendTo('coordinator', { type: 'stop' }),
    releaseNodeLease: sendTo('nodeLease', { type: 'release' }),
    /** Leadership depends on the connection (see the coordinator's `suspended`). */
    tellCoordinatorDisconnected: sendTo('coordinator', { type: 'connection.lost' }),
    tellCoordinatorReconnected: sendTo('coordinator', { type: 'connection.restored' }),
    /** Publish a state change in the node's advert now rather than at the next renewal. */
    advertise: sendTo('nodeLease', { type: 'renew' }),
  },
}).createMachine({
  id: 'node',
  context: ({ input }) => ({ ...input, timing: null, epoch: null, error: null, stopping: false }),
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        src: 'bootstrap',
        input: ({ context }) => ({ nodeId: context.nodeId, instance: context.instance, leaseKeys: context.leaseKeys }),
        onDone: { target: 'running', actions: { type: 'recordBootstrap', params: ({ event }) => ({ timing: event.output.timing }) } },
        onError: { target: 'failed', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
      on: { drain: 'stopped' },
    },
    running: {
      invoke: {
        id: 'coordinator',
        src: 'coordinator',
        input: ({ context }) => ({
          nodeId: context.nodeId,
          lease: { key: context.leaseKeys.leader, holder: holderOf(context), timing: context.timing! },
        }),
      },
      initial: 'member',
      on: {
        'nats.disconnected': { actions: 'tellCoordinatorDisconnected' },
        'nats.reconnected': { actions: 'tellCoordinatorReconnected' },
      },
      states: {
        member: {
          invoke: {
            id: 'nodeLease',
            src: 'nodeLease',
            input: ({ context }) => ({ key: context.leaseKeys.node, holder: holderOf(context), timing: context.timing! }),
          },
          initial: 'joining',
          on: {
            'lease.lost': { target: '#node.running.fenced', actions: 'recordFenced' },
            drain: { target: '.draining', actions: 'recordStopping' },
          },
          states: {
            joining: {
              on: {
                'lease.acquired': { target: 'ready', actions: 'recordJoined' },
                'lease.standby': { target: '#node.failed', actions: 'recordDuplicate' },
              },
            },
            ready: {
              entry: ['startCoordinator', 'advertise', 'resumeJobs'],
              on: {
                'nats.disconnected': { target: 'reconnecting', actions: 'tellCoordinatorDisconnected' },
                // Re-joined before the link was confirmed (a fenced node's new lease lands first): what was
                // assigned meanwhile waits for the link, so start it now.
                'nats.reconnected': { actions: ['tellCoordinatorReconnected', 'resumeJobs'] },
              },
            },
            // No advertise here: a renewal sent without a connection is buffered by the
            // client and lands late (or never), and would only write a stale state.
            reconnecting: {
              on: { 'nats.reconnected': { target: 'ready', actions: 'tellCoordinatorReconnected' } },
              after: { cutOffFence: { actions: 'stopJobsCutOff' } },
            },
            // Hand running jobs back first (a new owner resumes them from their
            // checkpoints), then step down, then release the node lease.
            draining: {
              entry: 'advertise',
              on: { drain: {} },
              // Bounded: a node cut off from NATS stops rather than retrying forever.
              after: { drainDeadline: { target: '#node.stopped', actions: 'recordDrainTimeout' } },
              initial: 'handingBack',
              states: {
                handingBack: {
                  invoke: { src: 'handBackJobs', onDone: 'steppingDown', onError: 'steppingDown' },
                },
                steppingDown: {
                  entry: 'stopCoordinator',
                  on: { 'coordinator.stopped': '#node.running.member.leaving' },
                },
              },
            },
            leaving: {
              entry: 'releaseNodeLease',
              on: {
                'lease.released': '#node.stopped',
                'lease.lost': '#node.stopped',
                drain: {},
              },
              after: { releaseTimeout: '#node.stopped' },
            },
          },
        },
        fenced: {
          entry: ['abortJobs', 'stopCoordinator'],
          on: { drain: '#node.stopped' },
          initial: 'stoppingCoordinator',
          states: {
            // Fenced while draining: its jobs were not handed back (the leader requeues them); stop, do not re-join.
            stoppingCoordinator: { on: { 'coordinator.stopped': [{ guard: 'stopping', target: '#node.stopped' }, 'waiting'] } },
            waiting: { after: { rejoinDelay: '#node.running.member' } },
          },
        },
      },
    },
    failed: { type: 'final' },
    stopped: { type: 'final' },
  },
});

function holderOf(ctx: NodeContext): LeaseHolder {
  return { id: ctx.nodeId, instance: ctx.instance };
}

/** The one-word state the status API shows for a node. */
export function nodeStateName(snapshot: SnapshotFrom<typeof nodeMachine>): string {
  for (const name of ['joining', 'ready', 'reconnecting', 'draining', 'leaving'] as const) {
    if (snapshot.matches({ running: { member: name } })) return name === 'leaving' ? 'draining' : name;
  }
  if (snapshot.matches({ running: 'fenced' })) return 'fenced';
  if (typeof snapshot.value === 'string') return snapshot.value;
  return 'unknown';
}
