// A node process: one node actor (which hosts a coordinator candidate),
// wired to NATS. Effects are provided to the pure machines here and nowhere
// else. SIGTERM/SIGINT drain: step down, release leases, exit 0.
import { createActor, fromPromise, type SnapshotFrom } from 'xstate';
import type { KV } from '@nats-io/kv';
import pkg from '../package.json' with { type: 'json' };
import { coordinatorMachine } from '../machines/coordinator.machine.ts';
import { leaseMachine, leaseValidAt, type LeaseHolder } from '../machines/lease.machine.ts';
import { nodeMachine, nodeStateName, type BootstrapOutput, type NodeInput } from '../machines/node.machine.ts';
import { startApi } from '../streams/api.ts';
import { bootstrap } from '../streams/bootstrap.ts';
import { decode, encode } from '../streams/codec.ts';
import { ApiError, LeaseTtlMismatchError } from '../streams/errors.ts';
import { JobStore } from '../streams/job.store.ts';
import type { JobRecord } from '../machines/job.machine.ts';
import { jobIdsSchema, offerSchema, type Bid } from '../streams/messages.ts';
import { heuristicScorer } from '../policies/scorer.ts';
import { apiEndpoints } from './api.endpoints.ts';
import { loadHandlers } from './handlers.ts';
import { JobIndex } from './job.index.ts';
import { JobRunner } from './job.runner.ts';
import { connectNats, type ConnectionFlags } from '../streams/connect.ts';
import { defaults, leaseTiming } from '../streams/defaults.ts';
import { transitionPublisher, type Transition } from '../streams/events.ts';
import { leaseEffects, servePing, type LeaseValue } from '../streams/lease.store.ts';
import { assertToken, names } from '../streams/subjects.ts';
import { leaderDuties } from './leader.duties.ts';
import { logger } from './log.ts';
import { hostName, runtimeName } from './runtime.ts';
import { sleep } from '../streams/time.ts';

export type NodeOptions = ConnectionFlags & {
  id?: string;
  slots?: number;
  /** Explicit TTL; undefined adopts the existing bucket's (or the default). */
  leaseTtlMs?: number;
  prefix?: string;
  replicas?: number;
  labels?: Record<string, string>;
  /** Off: no pings, so failover waits for the lease TTL (benchmark baseline). */
  fastPath?: boolean;
  /** A module exporting job handlers, added to the built-ins. */
  jobs?: string;
};

const verbose = process.env.SHOAL_LOG === 'debug';

/** Renewal cycles and the leader's periodic duties: in the event stream, not in the log. */
function isRoutine(t: Transition): boolean {
  const cycle = (a: string | null, b: string, re: RegExp) => a !== null && re.test(a) && re.test(b);
  return cycle(t.from, t.to, /^held\.confirmed\./) || cycle(t.from, t.to, /^active\.leader\.(placing|recovering)$/);
}

/** Runs a node until it stops; resolves with the process exit code. */
export async function runNode(o: NodeOptions): Promise<number> {
  const instance = crypto.randomUUID();
  const nodeId = assertToken('node id', o.id ?? `node-${instance.slice(0, 8)}`);
  const log = logger(nodeId);
  const n = names(o.prefix);
  const holder: LeaseHolder = { id: nodeId, instance };
  const startedAt = Date.now();
  const slots = o.slots ?? defaults.slots;
  const handlers = await loadHandlers(o.jobs);

  const nc = await connectNats(o, `shoal-node-${nodeId}`);
  log(`connected to ${nc.getServer()} (${runtimeName()}, pid ${process.pid})`);
  // Serve pings before any lease exists, so no prober mistakes us for dead.
  const ping = servePing(nc, n, holder);

  type Ready = { leases: KV; jobs: KV; store: JobStore; index: JobIndex; runner: JobRunner };
  let ready: Ready | null = null;
  const state = (): Ready => {
    if (!ready) throw new ApiError(503, 'starting', `node ${nodeId} is still starting`);
    return ready;
  };
  const leasesKv = () => state().leases;

  const publisher = transitionPublisher({
    nc, names: n, node: nodeId, instance, pid: process.pid,
    onTransition: (t) => {
      if (verbose || !isRoutine(t)) log(`${t.kind}${t.kind === 'lease' ? ` ${t.actor}` : ''}: ${t.from ?? '∅'} → ${t.to}${t.epoch !== null ? ` (epoch ${t.epoch})` : ''}`);
    },
    onError: (err) => log(`event publish failed: ${err.message}`),
  });

  let actorRef: { getSnapshot(): SnapshotFrom<typeof nodeMachine> } | null = null;
  const advert = (): Pick<LeaseValue, 'node'> => ({
    node: {
      pid: process.pid, host: hostName(), runtime: runtimeName(), slots,
      labels: o.labels ?? {}, state: actorRef ? nodeStateName(actorRef.getSnapshot()) : 'starting', startedAt,
      types: Object.keys(handlers).sort(), running: ready?.runner.running ?? 0,
    },
  });
  const effects = leaseEffects({ nc, kv: leasesKv, names: n, extras: (key) => (key.startsWith('node.') ? advert() : {}), fastPath: o.fastPath });
  /** The node lease is held and valid by the real clock: the runner may write. */
  const mayWrite = () => {
    const lease = actorRef?.getSnapshot().children.nodeLease?.getSnapshot() as SnapshotFrom<typeof leaseMachine> | undefined;
    return !!lease && leaseValidAt(lease.context, performance.now());
  };
  const leading = () => {
    const c = actorRef?.getSnapshot().children.coordinator?.getSnapshot() as SnapshotFrom<typeof coordinatorMachine> | undefined;
    return !!c && c.matches({ active: 'leader' }) && leaseValidAt(c.context, performance.now());
  };
  const duties = leaderDuties({ nc, names: n, leases: leasesKv, jobs: state, self: holder, log, fastPath: o.fastPath !== false, leading });

  const doBootstrap = fromPromise<BootstrapOutput, NodeInput>(async () => {
    // A cluster that is still forming answers "no suitable peers" or times out: wait for it.
    // Only a real misconfiguration (another lease TTL) fails the node.
    const b = await (async () => {
      const deadline = Date.now() + defaults.bootstrapTimeoutMs;
      for (let delay = 250; ; delay = Math.min(2_000, delay * 2)) {
        try {
          return await bootstrap(nc, n, { replicas: o.replicas, leaseTtlMs: o.leaseTtlMs });
        } catch (err) {
          if (err instanceof LeaseTtlMismatchError || Date.now() + delay > deadline) throw err;
          log(`JetStream not ready (${(err as Error).message}); retrying in ${delay} ms`);
          await sleep(delay);
        }
      }
    })();
    // Every record this node writes (by CAS) goes into the history too, for the chaos checker.
    const stateOf = (r: JobRecord) => (r.phase ? `${r.state}.${r.phase}` : r.state);
    const store = new JobStore(b.buckets.jobs, (prev, next, event) => publisher.record({
      kind: 'job', actor: next.id, from: prev ? stateOf(prev) : null, to: stateOf(next), event: event.type, epoch: next.attempt,
      data: {
        type: next.type, owner: next.owner, progress: next.progress,
        ...(event.type === 'job.start' ? { resumedFrom: event.resumedFrom } : {}),
        ...(next.state === 'succeeded' ? { result: next.result } : {}),
        ...(next.type === 'primes' && prev === null ? { input: next.input } : {}),
      },
    }));
    const runner = new JobRunner({
      store, checkpoints: b.buckets.checkpoints, nodeId, slots, handlers, log, mayWrite,
      onCheckpoint: (id, attempt, progress) => publisher.record({
        kind: 'job', actor: id, from: 'running', to: 'running', event: 'job.checkpoint', epoch: attempt, data: { progress },
      }),
      onLoad: (running) => actorRef && (actor.send({ type: 'jobs.load', running })),
    });
    ready = { leases: b.buckets.leases, jobs: b.buckets.jobs, store, index: new JobIndex(b.buckets.jobs), runner };
    publisher.open();
    if (b.adoptedTtl) log(`lease TTL ${b.leaseTtlMs} ms (from bucket ${n.leasesBucket})`);
    return { timing: leaseTiming(b.leaseTtlMs) };
  });

  const machine = nodeMachine.provide({
    actions: { abortJobs: () => ready?.runner.abortAll() },
    actors: {
      bootstrap: doBootstrap,
      handBackJobs: fromPromise(async () => {
        await ready?.runner.handBack();
      }),
      nodeLease: leaseMachine.provide({ actors: effects }),
      coordinator: coordinatorMachine.provide({
        actors: { leaderLease: leaseMachine.provide({ actors: effects }), ...duties },
        guards: { leaseValid: ({ context }) => leaseValidAt(context, performance.now()) },
      }),
    },
  });

  const actor = createActor(machine, { input: { nodeId, instance }, inspect: publisher.inspect });
  actorRef = actor;
  const done = new Promise<SnapshotFrom<typeof nodeMachine>>((resolve) => {
    actor.subscribe({
      next: (s) => {
        if (s.status === 'done') resolve(s);
      },
      error: (err) => {
        log(`node actor failed: ${(err as Error).message}`);
        resolve(actor.getSnapshot());
      },
    });
  });

  // Connection status feeds the machine; reconnect forever is set in connect.ts.
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') actor.send({ type: 'nats.disconnected' });
      else if (s.type === 'reconnect') actor.send({ type: 'nats.reconnected' });
    }
  })();

  const api = await startApi(nc, n, apiEndpoints({ nc, names: n, kv: state }), { version: pkg.version, node: nodeId });

  // Placement, the fast path: offers from the leader, assignments, cancels, drain. KV is the truth.
  const wins: number[] = [];
  const subs = [
    nc.subscribe(n.auction, {
      callback: (_err, msg) => {
        // Every ready node answers (maybe with no bids), so the leader can stop waiting once all have.
        if (!ready || !actorRef || nodeStateName(actorRef.getSnapshot()) !== 'ready' || !msg.reply) return;
        let offer;
        try {
          offer = decode(offerSchema, msg.data, 'offer');
        } catch {
          return;
        }
        const now = Date.now();
        while (wins.length && now - wins[0]! > 5_000) wins.shift();
        const free = ready.runner.free;
        const bid: Bid = {
          node: nodeId,
          free,
          bids: offer.jobs.filter((j) => free > 0 && handlers[j.type]).map((j) => ({
            id: j.id,
            score: heuristicScorer.score({ slots, freeSlots: free, running: ready!.runner.running, holdsCheckpoint: j.lastNode === nodeId, recentWins: wins.length, priority: j.priority }),
          })),
        };
        msg.respond(encode(bid));
      },
    }),
    nc.subscribe(n.nodeAssign(nodeId), {
      callback: (_err, msg) => {
        try {
          for (const id of decode(jobIdsSchema, msg.data, 'assignment').ids) {
            wins.push(Date.now());
            void ready?.runner.start(id);
          }
        } catch (err) {
          log(`bad assignment message: ${(err as Error).message}`);
        }
      },
    }),
    nc.subscribe(n.nodeCancel(nodeId), {
      callback: (_err, msg) => {
        try {
          for (const id of decode(jobIdsSchema, msg.data, 'cancel').ids) ready?.runner.stop(id, 'cancelled');
        } catch (err) {
          log(`bad cancel message: ${(err as Error).message}`);
        }
      },
    }),
    nc.subscribe(n.nodeDrain(nodeId), { callback: () => onSignal('drain request') }),
  ];

  let signals = 0;
  function onSignal(sig: string) {
    signals++;
    if (signals > 1) {
      log(`${sig} again: exiting without draining`);
      process.exit(1);
    }
    log(`${sig}: draining`);
    actor.send({ type: 'drain' });
  }
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  actor.start();
  const final = await done;
  const failed = final.value === 'failed' || final.status === 'error';
  if (final.context.error && failed) log(`error: ${final.context.error}`);
  actor.stop();
  await publisher.flush();
  await api.stop().catch(() => {});
  subs.forEach((x) => x.unsubscribe());
  (ready as Ready | null)?.index.stop();
  ping.unsubscribe();
  await nc.drain().catch(() => {});
  log(failed ? 'stopped with an error' : 'stopped');
  return failed ? 1 : 0;
}
