// One node, assembled: the node machine (with its lease and coordinator
// children) provided with the lease effects, the leader's duties, the job
// store, runner and index, and the job history wiring. Transport-free: a real
// process (node.process.ts) passes NATS-backed buckets, probe, placement and
// event sink; the simulation (chaos/sim.world.ts) passes its own.
import { createActor, fromPromise, type SnapshotFrom } from 'xstate';
import type { z } from 'zod';
import { coordinatorMachine } from '../machines/coordinator.machine.ts';
import { leaseMachine, type LeaseHolder } from '../machines/lease.machine.ts';
import { leaseTiming, leaseValidAt } from '../machines/lease.rules.ts';
import { nodeMachine, nodeStateName, type BootstrapOutput, type NodeInput } from '../machines/node.machine.ts';
import { auctionPolicy, type PlacementPolicy } from '../policies/placement.ts';
import type { Bucket } from '../streams/bucket.ts';
import { jobHistory, recordReap, type Recorder } from '../streams/events.ts';
import { JobStore } from '../streams/job.store.ts';
import { leaseEffects } from '../streams/lease.effects.ts';
import type { LeaseValue } from '../streams/lease.records.ts';
import { confirmGone, type Probe } from '../streams/probe.ts';
import type { NodeInbox, Notify, PlacementTransport } from '../streams/placement.ts';
import type { Clock } from '../streams/time.ts';
import type { Endpoint } from '../streams/api.ts';
import { ApiError } from '../streams/errors.ts';
import { apiEndpoints } from './api.endpoints.ts';
import type { Handler } from './handlers.ts';
import { nodeInbox } from './inbox.ts';
import { JobIndex } from './job.index.ts';
import { JobRunner } from './job.runner.ts';
import { leaderDuties } from './leader.duties.ts';
import type { Log } from './log.ts';

export type NodeBuckets = { leases: Bucket; jobs: Bucket; checkpoints: Bucket; leaseTtlMs: number };

export type NodeParts = { leases: Bucket; jobs: Bucket; store: JobStore; index: JobIndex; runner: JobRunner };

export type NodeWiringOptions = {
  nodeId: string;
  instance: string;
  slots: number;
  handlers: Record<string, Handler>;
  log: Log;
  clock: Clock;
  /** Find or create the buckets (a real node waits for JetStream here). */
  bootstrap: () => Promise<NodeBuckets>;
  probe: Probe;
  placement: PlacementTransport;
  /** How this node bids and, while it leads, awards (default: the auction with the heuristic scorer). */
  policy?: PlacementPolicy;
  /** What the API endpoints tell other nodes. */
  notify: Notify;
  /** Turns transitions and job writes into the history. */
  recorder: Recorder;
  /** Off: no pings, so failover waits for the lease TTL (benchmark baseline). */
  fastPath: boolean;
  /** The advert's facts about the process. */
  advert: { pid: number; host: string; runtime: string; labels: Record<string, string>; startedAt: number };
  /** Called once the node has its buckets (a real node opens its event stream). */
  onBootstrapped?: (b: NodeBuckets) => void;
};

export type WiredNode = {
  actor: ReturnType<typeof createActor<typeof nodeMachine>>;
  /** The NATS connection dropped (false) or came back (true): the node machine suspends leadership meanwhile. */
  connection(up: boolean): void;
  /** The node's answers to placement messages. */
  inbox: NodeInbox;
  /** The public API's endpoints as this node serves them (503 until bootstrapped). */
  api: Record<string, Endpoint<z.ZodType>>;
  /** Null until bootstrapped. */
  parts: () => NodeParts | null;
  /** Release what the actor does not own (the index's watch). */
  stop(): void;
};

export function wireNode(o: NodeWiringOptions): WiredNode {
  const { nodeId, instance, clock } = o;
  const policy = o.policy ?? auctionPolicy();
  // Followers and the leader's reaper act only on a confirmed "no responders".
  const probe = confirmGone(o.probe, clock);
  const holder: LeaseHolder = { id: nodeId, instance };
  let parts: NodeParts | null = null;
  const need = (): NodeParts => {
    if (!parts) throw new Error(`node ${nodeId} is still starting`);
    return parts;
  };

  let actorRef: { getSnapshot(): SnapshotFrom<typeof nodeMachine> } | null = null;
  const advert = (): Pick<LeaseValue, 'node'> => ({
    node: {
      pid: o.advert.pid, host: o.advert.host, runtime: o.advert.runtime, slots: o.slots,
      labels: o.advert.labels, state: actorRef ? nodeStateName(actorRef.getSnapshot()) : 'starting', startedAt: o.advert.startedAt,
      types: Object.keys(o.handlers).sort(), running: parts?.runner.running ?? 0,
    },
  });
  const effects = leaseEffects({
    kv: () => need().leases, probe, clock, fastPath: o.fastPath,
    extras: (key) => (key.startsWith('node.') ? advert() : {}),
  });
  const nodeLease = () => actorRef?.getSnapshot().children.nodeLease?.getSnapshot() as SnapshotFrom<typeof leaseMachine> | undefined;
  /** The node lease is held and valid by the real clock: the runner may write. */
  const mayWrite = () => {
    const lease = nodeLease();
    return !!lease && leaseValidAt(lease.context, clock.mono());
  };
  const coordinator = () => actorRef?.getSnapshot().children.coordinator?.getSnapshot() as SnapshotFrom<typeof coordinatorMachine> | undefined;
  /** Leading and running duties (not suspended for a lost connection), with the lease valid by our own clock. */
  const leading = () => {
    const c = coordinator();
    return !!c && (c.matches({ active: { leader: 'recovering' } }) || c.matches({ active: { leader: 'placing' } })) && leaseValidAt(c.context, clock.mono());
  };
  const duties = leaderDuties({
    leases: () => need().leases, jobs: need, self: holder, log: o.log, fastPath: o.fastPath, leading,
    probe, transport: o.placement, clock, policy,
    onReap: (h, epoch) => recordReap(o.recorder.record, h, epoch),
  });

  const bootstrap = fromPromise<BootstrapOutput, NodeInput>(async () => {
    const b = await o.bootstrap();
    // Every record this node writes (by CAS), checkpoint it commits and handler it runs goes into the history.
    const history = jobHistory(o.recorder.record);
    const store = new JobStore(b.jobs, history.onChange);
    const runner = new JobRunner({
      store, checkpoints: b.checkpoints, nodeId, slots: o.slots, handlers: o.handlers, log: o.log, mayWrite, clock,
      nodeEpoch: () => nodeLease()?.context.epoch ?? null,
      onCheckpoint: history.onCheckpoint,
      onHandler: history.onHandler,
      onLoad: (running) => actorRef && actor.send({ type: 'jobs.load', running }),
    });
    parts = { leases: b.leases, jobs: b.jobs, store, index: new JobIndex(b.jobs, { clock, log: o.log }), runner };
    o.onBootstrapped?.(b);
    return { timing: leaseTiming(b.leaseTtlMs) };
  });

  const machine = nodeMachine.provide({
    actions: { abortJobs: () => parts?.runner.abortAll() },
    actors: {
      bootstrap,
      handBackJobs: fromPromise(async () => {
        await parts?.runner.handBack();
      }),
      nodeLease: leaseMachine.provide({ actors: effects }),
      coordinator: coordinatorMachine.provide({
        actors: { leaderLease: leaseMachine.provide({ actors: effects }), ...duties },
        guards: { leaseValid: ({ context }) => leaseValidAt(context, clock.mono()) },
      }),
    },
  });

  const actor = createActor(machine, { input: { nodeId, instance }, inspect: o.recorder.inspect, clock });
  actorRef = actor;
  const inbox = nodeInbox({
    nodeId, slots: o.slots, clock, policy,
    handles: (type) => !!o.handlers[type],
    ready: () => nodeStateName(actor.getSnapshot()) === 'ready',
    runner: () => parts?.runner ?? null,
  });
  const api = apiEndpoints({
    notify: o.notify, clock,
    kv: () => {
      if (!parts) throw new ApiError(503, 'starting', `node ${nodeId} is still starting`);
      return parts;
    },
  });
  const connection = (up: boolean) => actor.send({ type: up ? 'nats.reconnected' : 'nats.disconnected' });
  return { actor, connection, inbox, api, parts: () => parts, stop: () => parts?.index.stop() };
}
