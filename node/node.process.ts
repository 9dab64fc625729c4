// A node process: one node actor (which hosts a coordinator candidate),
// wired to NATS. The NATS-backed effects are provided here (buckets, pings,
// placement messages, the event stream); node.wiring.ts assembles the rest.
// SIGTERM/SIGINT (or an embedding application's stop) drain: step down,
// release leases, exit 0.
import { type NodeConfig, type NodeOptions, resolveNodeConfig } from './config.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import type { SnapshotFrom } from 'xstate';
import pkg from '../package.json' with { type: 'json' };
import { type nodeMachine, nodeStateName } from '../machines/node.machine.ts';
import type { JobRecord } from '../api/contract.ts';
import { serveEndpoints, startApi } from '../nats/service.ts';
import { natsIntakeWire } from '../nats/dispatch.ts';
import { encode } from '../store/codec.ts';
import { bootstrap } from '../nats/bootstrap.ts';
import { connectNats, jsOptions } from '../nats/connect.ts';
import { defaults } from '../base/defaults.ts';
import { LeaseTtlMismatchError } from '../base/errors.ts';
import { type Transition, transitionPublisher } from '../nats/events.ts';
import { natsNotify, natsPlacement, serveInbox } from '../nats/placement.ts';
import { loneServer, natsProbe, servePing } from '../nats/probe.ts';
import { ensureWorkQueue, pullWork } from '../nats/work.queue.ts';
import { placementPolicy } from '../policies/placement.ts';
import { chooseScorer } from './policy.ts';
import { canRunNow, describeRequirements, nodeCapacity } from '../policies/requirements.ts';
import { fairness } from '../policies/fairness.ts';
import { type Names, names } from '../nats/subjects.ts';
import { realClock, sleep, within } from '../base/time.ts';
import { type JobTypes, loadJobTypes } from './handlers.ts';
import { threadedHandlers } from './handler.pool.ts';
import { typeCatalog } from './input.schemas.ts';
import { askType, serveSchemas } from './schema.service.ts';
import { type Log, logger } from './log.ts';
import { type NodeBuckets, type WiredNode, wireNode } from './node.wiring.ts';
import { inspectionFeed } from './inspection.ts';
import { nodeMetrics, serveMetrics } from './metrics.ts';
import { hostName, runtimeName } from './runtime.ts';
import { loggingReplyGuard } from '../nats/reply.ts';
import { followLink, stopRequests } from './node.lifecycle.ts';
import { nodeSchedules } from './schedules.ts';

const verbose = process.env.SHOAL_LOG === 'debug';

/**
 * Not logged unless SHOAL_LOG=debug: lease renewals, the leader's duty cycle,
 * and every job's own path (`shoal events --job ID` shows it; the
 * runner logs a job's failures). At thousands of jobs a second, a line per
 * transition cost more CPU than the jobs.
 */
function isRoutine(t: Transition): boolean {
  const cycle = (a: string | null, b: string, re: RegExp) => a !== null && re.test(a) && re.test(b);
  return t.kind === 'job' || cycle(t.from, t.to, /^held\.confirmed\./) ||
    cycle(t.from, t.to, /^active\.leader\.(placing|recovering)$/);
}

/** Find or create the buckets. A cluster that is still forming answers "no suitable peers" or times out: wait for it. Only a real misconfiguration (another lease TTL) fails the node. */
async function bootstrapWithRetry(nc: NatsConnection, n: Names, options: NodeConfig, log: Log): Promise<NodeBuckets> {
  const deadline = Date.now() + defaults.bootstrapTimeoutMs;
  for (let delay: number = defaults.retryFirstMs;; delay = Math.min(defaults.bootstrapRetryMaxMs, delay * 2)) {
    try {
      const b = await bootstrap(nc, n, { replicas: options.replicas, leaseTtlMs: options.leaseTtlMs ?? undefined });
      if (b.adoptedTtl) log(`lease TTL ${b.leaseTtlMs} ms (from bucket ${n.leasesBucket})`);
      return { ...b.buckets, leaseTtlMs: b.leaseTtlMs };
    } catch (err) {
      if (err instanceof LeaseTtlMismatchError || Date.now() + delay > deadline) throw err;
      log(`JetStream not ready (${(err as Error).message}); retrying in ${delay} ms`);
      await sleep(delay);
    }
  }
}

/** Resolves with the node actor's final snapshot (done, or failed). */
function finished(node: WiredNode, log: Log): Promise<SnapshotFrom<typeof nodeMachine>> {
  return new Promise((resolve) => {
    node.actor.subscribe({
      next: (s) => {
        if (s.status === 'done') resolve(s);
      },
      error: (err) => {
        log(`node actor failed: ${(err as Error).message}`);
        resolve(node.actor.getSnapshot());
      },
    });
  });
}

function describeTransition(t: Transition): string {
  return `${t.kind}${t.kind === 'lease' ? ` ${t.actor}` : ''}: ${t.from ?? '∅'} → ${t.to}${t.epoch !== null ? ` (epoch ${t.epoch})` : ''}`;
}

/**
 * `--count K`: K node actors in this process, `<id>-1` … `<id>-K`, each with its own connection, lease,
 * slots and coordinator candidate, as if each were a process (a fleet on one host). SIGTERM drains them
 * all; a kill takes them all, and every one's pings go unanswered at once. Resolves with the worst exit code.
 */
export async function runNodes(options: NodeOptions, count: number): Promise<number> {
  const config = resolveNodeConfig(options);
  if (count === 1) return runNode(config);
  process.setMaxListeners(count * 2 + 10); // each actor listens for SIGTERM and SIGINT
  const codes = await Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        runNode({
          ...config,
          id: `${config.id}-${i + 1}`,
          metrics: config.metrics && { ...config.metrics, port: config.metrics.port + i },
        }),
    ),
  );
  return Math.max(...codes);
}

/** Runs a node that owns the process (SIGTERM/SIGINT drain it) until it stops; resolves with the process exit code. */
export async function runNode(config: NodeConfig): Promise<number> {
  return await (await startNode(config, { signals: true })).done;
}

/** A running node, as an application that embeds one sees it. */
export type NodeHandle = {
  id: string;
  /** Resolves once the node is a member (its lease held, ready for work); rejects if it stops first. */
  ready: Promise<void>;
  /** Drain (hand running jobs back, release the leases) and stop; resolves with the exit code `done` gives. */
  stop(): Promise<number>;
  /** Resolves when the node has stopped: 0, or 1 when it failed or could not drain cleanly. */
  done: Promise<number>;
};

/** What an application embedding a node gives besides its config (`shoal/worker`). */
export type Embedding = {
  /** Job types beside the built-ins (and the config's `jobs` module); their handlers run on this thread. */
  types?: JobTypes;
  /** Drain on SIGTERM/SIGINT (a process of its own). @default false */
  signals?: boolean;
  /** Where log lines go. @default stderr, prefixed with time and node id */
  log?: Log;
};

/** Starts a node; resolves once it is connected and serving (`ready` says when it has joined). */
export async function startNode(config: NodeConfig, embed: Embedding = {}): Promise<NodeHandle> {
  const o = config;
  const instance = crypto.randomUUID();
  const nodeId = o.id;
  const log = embed.log ?? logger(nodeId);
  const n = names(o.prefix);
  const loaded = withTypes(await loadJobTypes(o.jobs ?? undefined, { allowExec: o.allowExec }), embed.types);
  const { schemas, settings } = loaded;
  // Computing handlers run in threads of their own, so one that never yields cannot starve this thread (leases, pings, API).
  const { handlers, pool } = threadedHandlers(loaded, o, log);
  if (o.allowExec) log('--allow-exec: any caller that may submit jobs can run commands on this node (docs/operations.md, Security)');
  const scorer = await chooseScorer(o.policy, log);

  const nc = await connectNats(o.connection, `shoal-node-${nodeId}`, { inboxPrefix: n.nodeInbox });
  const types = typeCatalog({ schemas, settings }, { ask: askType(nc, n), clock: realClock });
  log(`connected to ${nc.getServer()} (${runtimeName()}, pid ${process.pid})`);
  const viaLeaf = jsOptions(nc).domain !== undefined; // a JetStream domain: behind a leaf node

  // Serve pings before any lease exists, so no prober mistakes us for dead. Every reply this node sends goes to
  // an inbox, never to a subject a caller names otherwise (nats/reply.ts).
  let parts: WiredNode['parts'] = () => null;
  const link = { connected: true };
  const { feed, metrics, publisher } = observe(config, { nc, n, instance, log, scorer, link, parts: () => parts() });
  const guard = loggingReplyGuard(log, { extra: o.replyPrefixes, onDrop: () => metrics?.repliesRefused.inc() });
  const ping = servePing(nc, n, { id: nodeId, instance }, guard);
  const node = wireNode({
    nodeId,
    instance,
    capacity: o.capacity,
    preemption: o.preemption,
    handlers,
    settings,
    log,
    clock: realClock,
    fastPath: o.fastPath,
    retentionMs: o.retentionMs,
    probe: natsProbe(nc, n),
    // Behind a leaf node, "no responders" may mean only that the leaf link is down: never final.
    goneIsFinal: viaLeaf ? () => false : loneServer(nc),
    probeConfirmMs: defaults.clusterProbeConfirmMs,
    policy: placementPolicy(o.placement, scorer.scorer),
    speed: o.speed,
    placement: natsPlacement(nc, n),
    notify: natsNotify(nc, n),
    dispatch: o.placement === 'dispatch'
      ? { wire: natsIntakeWire(nc, n, guard, log), serveReads: (endpoints) => serveEndpoints(nc, n, endpoints, guard) }
      : undefined,
    onDrainRequest: () => stops.request('drain request'),
    types,
    recorder: publisher,
    advert: {
      pid: process.pid,
      host: hostName(),
      runtime: runtimeName(),
      startedAt: Date.now(),
      policy: scorer.description,
      placement: o.placement,
    },
    bootstrap: () => bootstrapWithRetry(nc, n, o, log),
    onBootstrapped: () => publisher.open(),
    observer: metrics?.observer,
    inspect: feed.inspect,
  });
  parts = node.parts;
  const health = () => {
    const s = node.actor.getSnapshot();
    const state = nodeStateName(s);
    return { state, live: s.status === 'active', ready: state === 'ready' };
  };
  const metricsServer = metrics && o.metrics ? await serveMetrics(metrics.registry, o.metrics.port, o.metrics.host, health) : null;
  if (metricsServer) log(`metrics on http://${o.metrics!.host}:${o.metrics!.port}/metrics`);
  const done = finished(node, log);

  const stopContact = followLink(nc, { viaLeaf, log, link, node, publisher });

  const stops = stopRequests(node, log, { signals: embed.signals === true });
  const schedules = nodeSchedules(nc, n, o.replicas, { node, types, log });
  const api = await startApi(nc, n, { ...node.api, ...schedules.endpoints }, { version: pkg.version, node: nodeId, guard });
  // Placement, the fast path: offers from the leader, assignments, cancels. KV is the truth.
  const subs = [
    ...serveInbox(nc, n, { nodeId, inbox: node.inbox, log, guard }),
    ...serveSchemas(nc, n, loaded, guard),
    // A viewer's sync (and heartbeat): this node's actors as they are now.
    nc.subscribe(n.inspectSync, {
      callback: (_err, msg) => {
        if (guard.allows(msg.reply, 'inspect sync')) msg.respond(encode({ node: nodeId, instance, events: feed.sync() }));
      },
    }),
  ];

  const ready = joined(node, nodeId, done);
  ready.catch(() => {}); // for whoever awaits it; a process of its own (runNode) does not
  node.actor.start();
  const stopPulling = o.placement === 'pull' ? startPulling(nc, n, o, nodeId, node, log) : () => {};
  const exited = done.then(async (final) => {
    stopPulling();
    node.actor.stop();
    stops.dispose();
    return await shutdown(final, log, {
      flush: () => publisher.flush(),
      stopApi: () => api.stop(),
      release: () => {
        subs.forEach((x) => x.unsubscribe());
        node.stop();
        feed.stop();
        metricsServer?.close();
        ping.unsubscribe();
        stopContact();
        schedules.stop();
        void pool?.close();
      },
      nc,
    });
  });
  return { id: nodeId, ready, done: exited, stop: () => (stops.request('stop requested'), exited) };
}

/** The types a module or application adds: their handlers, schemas and settings (theirs win over the built-ins'). */
function withTypes(base: JobTypes, more: JobTypes | undefined): JobTypes {
  if (!more) return base;
  return {
    handlers: { ...base.handlers, ...more.handlers },
    schemas: { ...base.schemas, ...more.schemas },
    settings: { ...base.settings, ...more.settings },
  };
}

/** Resolves the first time the node is ready (a member with its lease); rejects if it stops before. */
function joined(node: WiredNode, id: string, done: Promise<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    const sub = node.actor.subscribe((s) => {
      if (nodeStateName(s) === 'ready') (sub.unsubscribe(), resolve());
    });
    void done.then(() => (sub.unsubscribe(), reject(new Error(`node ${id} stopped before it joined the cluster`))));
  });
}

/** The node's observability: the live inspection feed, Prometheus metrics (with `metrics` set) and the event publisher. */
function observe(
  config: NodeConfig,
  deps: {
    nc: NatsConnection;
    n: Names;
    instance: string;
    log: Log;
    scorer: { description: string; fallback: string | null };
    link: { connected: boolean };
    parts: WiredNode['parts'];
  },
) {
  const { nc, n, log, link, parts } = deps;
  const nodeId = config.id;
  const feed = inspectionFeed({
    nodeId,
    clock: realClock,
    // A disconnected client would buffer the batch: drop it instead (viewers resync).
    publish: (batch) => link.connected && (nc.publish(n.inspectEvents(nodeId), encode(batch)), true),
    onPublished: (k) => metrics?.inspect.published.inc(k),
    onDropped: (k) => metrics?.inspect.dropped.inc(k),
  });
  const metrics = config.metrics === null ? null : nodeMetrics({
    nodeId,
    liveJobs: () => parts()?.indexIfAny()?.live.values() ?? [],
    policy: deps.scorer.description,
    policyFallback: deps.scorer.fallback !== null,
    // Over the nodes that ran work in the window (status, which reads the leases, adds the idle live ones).
    fairness: () => {
      const index = parts()?.indexIfAny();
      return index ? fairness(index.records(), undefined, Date.now(), defaults.fairnessWindowMs) : null;
    },
  });
  const publisher = transitionPublisher({
    nc,
    names: n,
    node: nodeId,
    instance: deps.instance,
    pid: process.pid,
    onTransition: (t) => {
      metrics?.transition(t);
      if (verbose || !isRoutine(t)) log(describeTransition(t));
    },
    onError: (err) => log(`event publish failed: ${err.message}`),
  });

  return { feed, metrics, publisher };
}

/**
 * `--placement pull`: take work from the queue while this node has free slots; each item is assigned to us by CAS,
 * then started. A job whose requirements this node does not meet (or has not free now) goes back for another node.
 */
function startPulling(nc: NatsConnection, n: Names, options: NodeConfig, nodeId: string, node: WiredNode, log: Log): () => void {
  const capacity = nodeCapacity(options.capacity);
  return pullWork(nc, n, {
    // A forming cluster may not take the stream yet ("no suitable peers"): the puller tries again.
    ensure: () => ensureWorkQueue(nc, n, options.replicas),
    free: () => (nodeStateName(node.actor.getSnapshot()) === 'ready' ? node.parts()?.runner.free ?? 0 : 0),
    log,
    take: async (job) => {
      const p = node.parts();
      if (!p) throw new Error('not bootstrapped yet');
      const requires = p.index().latest(job.id)?.requires;
      if (requires && !canRunNow(requires, capacity, p.runner.freeUsage)) {
        throw new Error(`it requires ${describeRequirements(requires)}: left for another node`);
      }
      const decide = (
        c: JobRecord,
      ) => (c.state === 'queued' && c.attempt === job.attempt ? { type: 'job.assign' as const, node: nodeId, at: Date.now() } : null);
      const r = await p.store.apply(job.id, decide, p.index().versioned(job.id));
      if (r?.changed) return void p.runner.start(job.id, { value: r.record, revision: r.revision });
      // Still queued for this attempt: refused for its retry backoff, which the node that failed it set by its
      // own clock (ours may be behind): back on the queue until then, never dropped.
      if (r && r.record.state === 'queued' && r.record.attempt === job.attempt) {
        const wait = Math.min(defaults.retryMaxMs, Math.max(100, r.record.notBefore - Date.now()));
        throw Object.assign(new Error(`its retry backoff has ${wait} ms to go here`), { retryInMs: wait });
      }
      // Taken by another node, or an older attempt's item: nothing to do, the item is done.
    },
  });
}

/**
 * After the node machine stopped: flush the last events, stop serving, close
 * the connection, each bounded (with the nats-server gone, acknowledgements and
 * drains never come). Exit code 1 when the node failed, or was told to stop
 * and could not hand its jobs back cleanly (cut off, or past its deadline).
 */
async function shutdown(
  final: SnapshotFrom<typeof nodeMachine>,
  log: Log,
  options: { flush(): Promise<void>; stopApi(): Promise<unknown>; release(): void; nc: NatsConnection },
): Promise<number> {
  const failed = final.value === 'failed' || final.status === 'error';
  const unclean = final.value === 'stopped' && final.context.error !== null;
  if (final.context.error && failed) log(`error: ${final.context.error}`);
  if (unclean) log(`could not drain cleanly: ${final.context.error}`);
  if (!await within(options.flush(), defaults.stopFlushMs)) log(`events not acknowledged within ${defaults.stopFlushMs} ms; giving up`);
  await within(options.stopApi(), defaults.stopFlushMs);
  options.release();
  if (!await within(options.nc.drain(), defaults.stopFlushMs)) await options.nc.close().catch(() => {});
  log(failed || unclean ? 'stopped with an error' : 'stopped');
  return failed || unclean ? 1 : 0;
}
