// One node, assembled: the node machine (with its lease and coordinator
// children) provided with the lease effects, the leader's duties, the job
// store, runner and index, and the job history wiring. Transport-free: a real
// process (node.process.ts) passes NATS-backed buckets, probe, placement and
// event sink; the simulation (chaos/sim/world.ts) passes its own.
import { defaults } from '../base/defaults.ts';
import type { DispatchWiring, NodeActor, NodeBuckets, NodeObserver, NodeParts, NodeWiringOptions, WiredNode } from './node.parts.ts';
import { createActor, fromPromise, type SnapshotFrom } from 'xstate';
import { coordinatorMachine } from '../machines/coordinator.machine.ts';
import { leaseMachine } from '../machines/lease.machine.ts';
import { leaseFreshAt, leaseTiming, leaseValidAt } from '../machines/lease.rules.ts';
import { type BootstrapOutput, type NodeInput, nodeMachine, nodeStateName } from '../machines/node.machine.ts';
import { type PlacementPolicy } from '../policies/placement.ts';
import { type NodeCapacity, nodeCapacity } from '../policies/requirements.ts';
import { jobHistory, recordReap } from '../nats/events.ts';
import { JobStore } from '../store/job.store.ts';
import { leaseEffects } from '../store/lease.effects.ts';
import type { LeaseValue } from '../store/lease.records.ts';
import { confirmGone } from '../nats/probe.ts';
import { keys } from '../store/keys.ts';
import { ApiError } from '../base/errors.ts';
import { apiEndpoints, readEndpoints } from './api.endpoints.ts';
import { intakeClient } from '../nats/dispatch.ts';
import type { DispatchHost, DispatchServing } from './leader/dispatch.loop.ts';
import { nodeInbox } from './inbox.ts';
import { JobIndex } from './job.index.ts';
import { JobRunner } from './job.runner.ts';
import { leaderDuties } from './leader/duties.ts';

export type { DispatchWiring, NodeBuckets, NodeObserver, NodeParts, NodeWiringOptions, WiredNode };

/** What the node's effects read of the running node: its parts once bootstrapped, and its machines' snapshots. */
class NodeView {
  readonly options: NodeWiringOptions;
  parts: NodeParts | null = null;
  actor: NodeActor | null = null;
  /** The dispatcher's host (`dispatch` placement). */
  host: DispatchHost | null = null;
  constructor(options: NodeWiringOptions) {
    this.options = options;
  }
  need(): NodeParts {
    if (!this.parts) throw new Error(`node ${this.options.nodeId} is still starting`);
    return this.parts;
  }
  nodeLease() {
    return this.actor?.getSnapshot().children.nodeLease?.getSnapshot() as SnapshotFrom<typeof leaseMachine> | undefined;
  }
  coordinator() {
    return this.actor?.getSnapshot().children.coordinator?.getSnapshot() as SnapshotFrom<typeof coordinatorMachine> | undefined;
  }
  /** The link to NATS is up (connected and in contact): handlers may start. */
  linked = true;
  /** The node lease is held and valid by the real clock: the runner may write. */
  mayWrite(): boolean {
    const lease = this.nodeLease();
    return !!lease && leaseValidAt(lease.context, this.options.clock.mono());
  }
  /** Leading and running duties (not suspended for a lost connection), with the lease valid by our own clock. */
  leading(): boolean {
    const c = this.coordinator();
    return !!c && (c.matches({ active: { leader: 'recovering' } }) || c.matches({ active: { leader: 'placing' } })) &&
      leaseValidAt(c.context, this.options.clock.mono());
  }
  /** What this node, leading, names in the leader lease: its standby. */
  standby(): Pick<LeaseValue, 'standby'> {
    const standby = this.host?.standby();
    return standby ? { standby } : {};
  }

  /** While this node is the standby: the stop of the reads it serves beside the dispatcher. */
  standbyReads: (() => void) | null = null;

  /**
   * The leader lease as a follower's poll read it: the standby named there keeps a warm job index and serves
   * the reads beside the dispatcher; a node no longer named lets both go.
   */
  leaderRead(v: LeaseValue): void {
    const dispatch = this.options.dispatch;
    if (!dispatch || !this.parts || v.holder.id === this.options.nodeId) return;
    if (v.standby === this.options.nodeId) {
      this.parts.index();
      this.standbyReads ??= dispatch.serveReads(readEndpoints({ kv: () => apiKv(this) }, this.options.clock));
    } else if (!this.leading()) this.stopStandby();
  }

  stopStandby(): void {
    this.standbyReads?.();
    this.standbyReads = null;
    this.parts?.dropIndex();
  }

  /** The node's advert, written with every put of its lease. */
  advert(): Pick<LeaseValue, 'node'> {
    const { options } = this;
    return {
      node: {
        pid: options.advert.pid,
        host: options.advert.host,
        runtime: options.advert.runtime,
        slots: options.capacity.slots,
        labels: options.capacity.labels,
        state: this.actor ? nodeStateName(this.actor.getSnapshot()) : 'starting',
        startedAt: options.advert.startedAt,
        types: Object.keys(options.handlers).sort(),
        limits: Object.fromEntries(
          Object.entries(options.settings ?? {}).flatMap(([t, s]) => (s.concurrency === undefined ? [] : [[t, s.concurrency]])),
        ),
        running: this.parts?.runner.running ?? 0,
        policy: options.advert.policy,
        placement: options.advert.placement,
        speed: options.speed,
        ioSlots: options.capacity.ioSlots,
        ...(options.capacity.memMb === null ? {} : { memMb: options.capacity.memMb }),
        gpu: options.capacity.gpu,
        writtenAt: options.clock.now(),
      },
    };
  }
  capacity(): NodeCapacity {
    return nodeCapacity(this.options.capacity);
  }
}

/** Open the buckets, then build the store, runner and index; every record, checkpoint and handler run goes into the history. */
function bootstrapActor(view: NodeView) {
  const { options } = view;
  return fromPromise<BootstrapOutput, NodeInput>(async () => {
    const b = await options.bootstrap();
    const history = jobHistory(options.recorder.record);
    const store = new JobStore(b.jobs, (prev, next, ...rest) => {
      history.onChange(prev, next, ...rest);
      options.observer?.jobWritten?.(prev, next);
    });
    const runner = new JobRunner({
      store,
      checkpoints: b.checkpoints,
      nodeId: options.nodeId,
      capacity: options.capacity,
      graceMs: options.preemption.graceMs,
      speed: options.speed,
      handlers: options.handlers,
      settings: options.settings,
      log: options.log,
      clock: options.clock,
      mayWrite: () => view.mayWrite(),
      linked: () => view.linked,
      nodeEpoch: () => view.nodeLease()?.context.epoch ?? null,
      onCheckpoint: (id, attempt, progress, revision, bytes, ms) => {
        history.onCheckpoint(id, attempt, progress, revision);
        options.observer?.checkpointSaved?.(bytes, ms);
      },
      onHandler: history.onHandler,
    });
    let index: JobIndex | null = null;
    view.parts = {
      leases: b.leases,
      jobs: b.jobs,
      checkpoints: b.checkpoints,
      store,
      runner,
      index: () => (index ??= new JobIndex(b.jobs, { clock: options.clock, log: options.log })),
      indexIfAny: () => index,
      dropIndex: () => {
        index?.stop();
        index = null;
      },
    };
    // Without a dispatcher every node answers waits and status from its own index: start it now.
    if (!options.policy.dispatches) view.parts.index();
    options.onBootstrapped?.(b);
    return { timing: leaseTiming(b.leaseTtlMs) };
  });
}

/** What a dispatching node serves while it leads: the intake subject and the API's waits and status, from its index. */
function dispatchServing(view: NodeView, dispatch: DispatchWiring): DispatchServing {
  return {
    serve(intake) {
      // A standby taking over serves the reads as the dispatcher now.
      view.standbyReads?.();
      view.standbyReads = null;
      const stopIntake = dispatch.wire.serve(intake);
      const stopReads = dispatch.serveReads(readEndpoints({ kv: () => apiKv(view) }, view.options.clock));
      return () => {
        stopIntake();
        stopReads();
      };
    },
    release: () => view.parts?.dropIndex(),
  };
}

/** The buckets and index the API endpoints read (503 until bootstrapped). */
function apiKv(view: NodeView) {
  const parts = view.parts;
  if (!parts) throw new ApiError(503, 'starting', `node ${view.options.nodeId} is still starting`);
  return { leases: parts.leases, jobs: parts.jobs, checkpoints: parts.checkpoints, store: parts.store, index: () => parts.index() };
}

/** The node machine with every effect provided: lease effects for both leases, the leader's duties, the runner. */
function provideNode(view: NodeView, policy: PlacementPolicy) {
  const { options } = view;
  // Followers and the leader's reaper act only on a confirmed "no responders".
  const probe = confirmGone(options.probe, options.clock, { final: options.goneIsFinal, confirmMs: options.probeConfirmMs });
  const effects = leaseEffects({
    kv: () => view.need().leases,
    probe,
    clock: options.clock,
    fastPath: options.fastPath,
    extras: (key) => (key === keys.node(options.nodeId) ? view.advert() : key === keys.leader ? view.standby() : {}),
    // With a dispatcher: only its standby pings it (the others poll the key), and the standby keeps its table warm.
    pings: options.policy.dispatches ? (v) => v.standby === undefined || v.standby === options.nodeId : undefined,
    onRead: (key, v) => key === keys.leader && view.leaderRead(v),
  });
  const duties = leaderDuties({
    leases: () => view.need().leases,
    jobs: () => ({ store: view.need().store, index: view.need().index() }),
    checkpoints: () => view.need().checkpoints,
    retentionMs: options.retentionMs ?? defaults.retentionMs,
    random: options.random,
    self: { id: options.nodeId, instance: options.instance },
    log: options.log,
    fastPath: options.fastPath,
    reapGraceMs: options.fence?.reapGraceMs ?? defaults.reapGraceMs,
    leading: () => view.leading(),
    probe,
    transport: options.placement,
    clock: options.clock,
    policy,
    preemption: options.preemption,
    onReap: (h, epoch) => recordReap(options.recorder.record, h, epoch),
    onAuction: (ms, offered, awarded) => options.observer?.auction?.(ms, offered, awarded),
  }, options.dispatch && dispatchServing(view, options.dispatch));
  view.host = duties.host;
  return nodeMachine.provide({
    actions: {
      abortJobs: () => view.parts?.runner.abortAll(),
      stopJobsCutOff: () => view.parts?.runner.cutOff(),
      resumeJobs: () => view.parts?.runner.relinked(),
    },
    delays: { cutOffFence: options.fence?.cutOffMs ?? defaults.cutOffFenceMs },
    actors: {
      bootstrap: bootstrapActor(view),
      handBackJobs: fromPromise(async () => {
        await view.parts?.runner.handBack();
      }),
      nodeLease: leaseMachine.provide({ actors: effects }),
      coordinator: coordinatorMachine.provide({
        actors: { leaderLease: leaseMachine.provide({ actors: effects }), ...duties },
        guards: {
          leaseValid: ({ context }) => leaseValidAt(context, options.clock.mono()),
          leaseFresh: ({ context }) => leaseFreshAt(context, context.lease.timing, options.clock.mono()),
        },
      }),
    },
  });
}

export function wireNode(options: NodeWiringOptions): WiredNode {
  const { nodeId, instance, clock } = options;
  const policy = options.policy;
  const view = new NodeView(options);
  const leaseKeys = { node: keys.node(nodeId), leader: keys.leader };
  const actor = createActor(provideNode(view, policy), {
    input: { nodeId, instance, leaseKeys },
    inspect: options.inspect ? (ev) => (options.recorder.inspect(ev), options.inspect!(ev)) : options.recorder.inspect,
    clock,
  });
  view.actor = actor;
  const inbox = nodeInbox({
    nodeId,
    slots: options.capacity.slots,
    speed: options.speed,
    capacity: view.capacity(),
    clock,
    policy,
    handles: (type) => !!options.handlers[type],
    ready: () => nodeStateName(actor.getSnapshot()) === 'ready',
    epoch: () => view.nodeLease()?.context.epoch ?? null,
    runner: () => view.parts?.runner ?? null,
  });
  const dispatch = options.dispatch;
  const api = apiEndpoints({
    notify: options.notify,
    self: { id: nodeId, drain: options.onDrainRequest ?? (() => actor.send({ type: 'drain' })) },
    types: options.types,
    clock,
    kv: () => apiKv(view),
    intake: dispatch && policy.dispatches ? intakeClient(dispatch.wire, { local: () => view.host?.local() ?? null, clock }) : undefined,
  });
  const connection = (up: boolean) => {
    view.linked = up;
    actor.send({ type: up ? 'nats.reconnected' : 'nats.disconnected' });
  };
  const stop = () => {
    view.host?.stop();
    view.stopStandby();
  };
  return { actor, connection, inbox, api, parts: () => view.parts, leading: () => view.leading(), stop };
}
