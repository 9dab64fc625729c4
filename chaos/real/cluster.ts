// The real processes of one chaos run: a nats-server (or a 3-server JetStream
// cluster), N node processes each behind its own TCP proxies (one per server),
// a client connection, and a timeline of deferred steps (heals, resumes,
// cancels) that the run waits out. `stop()` removes everything it started.
import type { EndpointName, RequestOf } from '../../api/contract.ts';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { freePort, leafConfig, type NatsCluster, type NatsServer, startCluster, startServer } from '../../harness/launcher.ts';
import { edgeDomain } from '../../harness/local.cluster.ts';
import { type NodeProcess, spawnNode } from '../../harness/spawn.ts';
import { type Bucket, natsBucket } from '../../store/bucket.ts';
import { callApi } from '../../nats/client.ts';
import { readLease } from '../../store/lease.records.ts';
import { names } from '../../nats/subjects.ts';
import { keys } from '../../store/keys.ts';
import { allowOldServerEnv } from '../../nats/version.ts';
import { sleep, until } from '../../base/time.ts';
import { TcpProxy } from './proxy.ts';
import type { Transition } from '../../nats/events.ts';
import { clientSubmit, clientWait, harnessRecorder, processKilled } from '../history.ts';
import type { ChaosJob } from './schedule.ts';

export type ClusterOptions = {
  nodes: number;
  servers: 1 | 3;
  leaseTtlMs: number;
  /** A nats-server binary other than the default (the 2.9.10 test). */
  serverBin?: string;
  /** Let nodes run on a server older than 2.10 (only for the test that shows why Shoal refuses it). */
  allowOldServer?: boolean;
  /**
   * An edge site: the last node connects to a leaf-node nats-server (no JetStream) whose link to the core
   * runs through a proxy (`leafLink`, cut by the `cut-leaf` fault); the core gets JetStream domain `core`.
   */
  leaf?: boolean;
  log: (line: string) => void;
};

/** One node id: its current process and its proxies (which outlive restarts); `edge`: behind the leaf server. */
export type Slot = { id: string; proc: NodeProcess; proxies: TcpProxy[]; edge?: boolean };

/** The API request that submits a generated job. */
export function submitBody(j: ChaosJob): RequestOf<'jobs.submit'> {
  return j.priority === undefined ? kindBody(j) : { ...kindBody(j), priority: j.priority };
}

function kindBody(j: ChaosJob): RequestOf<'jobs.submit'> {
  switch (j.kind) {
    case 'primes':
      return { id: j.id, type: 'primes', input: { limit: j.limit, chunk: 10_000, pauseMs: 60 } };
    case 'sleep':
      return { id: j.id, type: 'sleep', input: { ms: j.ms } };
    case 'fail':
      return { id: j.id, type: 'fail', input: { message: 'fails on purpose' }, maxAttempts: 2 };
    case 'cancel':
      return { id: j.id, type: 'sleep', input: { ms: j.ms } };
  }
}

/** Steps deferred to later (the end of a timed fault, a cancel): the run waits until none is left. */
export class Timeline {
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #log: (line: string) => void;
  constructor(log: (line: string) => void) {
    this.#log = log;
  }
  later(ms: number, fn: () => Promise<unknown> | void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      const p = Promise.resolve().then(fn).catch((err) => this.#log(`deferred step failed: ${(err as Error).message}`));
      this.#pending.add(p);
      void p.finally(() => this.#pending.delete(p));
    }, ms);
    this.#timers.add(t);
  }
  /** Resolves once every deferred step has run and settled. */
  async settle(): Promise<void> {
    while (this.#timers.size > 0 || this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending]);
      if (this.#timers.size > 0) await sleep(50);
    }
  }
  cancel(): void {
    this.#timers.forEach(clearTimeout);
    this.#timers.clear();
  }
}

export class ChaosCluster {
  readonly options: ClusterOptions;
  readonly names = names();
  readonly servers: NatsServer[];
  readonly cluster: NatsCluster | null;
  readonly slots: Slot[] = [];
  readonly timeline: Timeline;
  /** Job ids some node accepted. */
  readonly accepted = new Set<string>();
  /** What the harness saw itself (processes it killed, what the client was answered): added to the history. */
  readonly observed: Transition[] = [];
  readonly #observe = harnessRecorder(() => Date.now());
  /** Set by `stop()`: the client's waits stop asking. */
  #stopping = false;
  /** nats-servers killed and not yet restarted. */
  downServers = 0;
  /** With `leaf`: the edge site's leaf server and its link to the core. */
  leaf: NatsServer | null = null;
  leafLink: TcpProxy | null = null;
  #nc: NatsConnection | null = null;
  #buckets: { leases: Bucket; jobs: Bucket; jsm: JetStreamManager } | null = null;

  private constructor(options: ClusterOptions, servers: NatsServer[], cluster: NatsCluster | null) {
    this.options = options;
    this.servers = servers;
    this.cluster = cluster;
    this.timeline = new Timeline(options.log);
  }

  /** Start the servers and the nodes, and wait for a leader and every node ready. The caller must `stop()` it, even if this throws. */
  static async start(options: ClusterOptions, onCreated: (c: ChaosCluster) => void): Promise<ChaosCluster> {
    const leafPorts = options.leaf ? await Promise.all([0, 1, 2].map(() => freePort())) : [];
    const serverOpts = {
      bin: options.serverBin,
      allowOld: options.allowOldServer,
      ...(options.leaf ? { jsDomain: edgeDomain, config: leafConfig.listen(leafPorts) } : {}),
    };
    const cluster = options.servers === 3 ? await startCluster({ ...serverOpts, size: 3 }) : null;
    const servers = cluster ? cluster.servers : [await startServer(serverOpts)];
    const c = new ChaosCluster(options, servers, cluster);
    onCreated(c);
    if (options.leaf) {
      c.leafLink = await TcpProxy.start({ port: leafPorts[0]! });
      c.leaf = await startServer({
        name: 'leaf1',
        jetstream: false,
        bin: options.serverBin,
        config: leafConfig.remotes([c.leafLink.port]),
      });
    }
    for (let i = 0; i < options.nodes; i++) {
      const edge = options.leaf === true && i === options.nodes - 1;
      const proxies = await Promise.all((edge ? [c.leaf!] : servers).map((s) => TcpProxy.start({ port: s.port })));
      const slot = { id: `n${i + 1}`, proxies, edge } as Slot;
      slot.proc = c.spawn(slot);
      c.slots.push(slot);
    }
    c.#nc = await connect({ servers: servers.map((s) => s.url), maxReconnectAttempts: -1, reconnectTimeWait: 100, pingInterval: 2_000 });
    await until(
      'a leader and every node ready',
      async () => {
        const s = await callApi(c.nc, c.names, 'status', {}, 2_000);
        return s.leader !== null && s.nodes.length === options.nodes && s.nodes.every((x) => x.state === 'ready');
      },
      90_000,
      100,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${c.logs()}`);
    });
    const kvm = new Kvm(jetstream(c.nc, { timeout: 5_000 }));
    const jsm = await jetstreamManager(c.nc, { timeout: 5_000 });
    c.#buckets = {
      leases: natsBucket(await kvm.open(c.names.leasesBucket), c.names.leasesBucket, jsm),
      jobs: natsBucket(await kvm.open(c.names.jobsBucket), c.names.jobsBucket, jsm),
      jsm,
    };
    return c;
  }

  get nc(): NatsConnection {
    if (!this.#nc) throw new Error('chaos cluster: not connected yet');
    return this.#nc;
  }
  get buckets() {
    if (!this.#buckets) throw new Error('chaos cluster: not started yet');
    return this.#buckets;
  }

  /** A node process for the slot, connected only through its proxies. */
  spawn(slot: Omit<Slot, 'proc'>): NodeProcess {
    return spawnNode({
      id: slot.id,
      nats: slot.proxies.map((p) => p.url).join(','),
      leaseTtlMs: this.options.leaseTtlMs,
      replicas: this.options.servers,
      // Small nodes: slots fill up, so urgent jobs in the schedule preempt.
      slots: 2,
      args: ['--no-discovery', ...(slot.edge ? ['--js-domain', edgeDomain] : [])],
      env: this.options.allowOldServer ? { [allowOldServerEnv]: '1' } : undefined,
    });
  }

  /** The slot whose live process holds the leader lease now. */
  async leaderSlot(): Promise<Slot | null> {
    const l = await readLease(this.buckets.leases, keys.leader).catch(() => null);
    return this.slots.find((x) => x.id === l?.value.holder.id && x.proc.running) ?? null;
  }

  /** The leader's warm standby, as the leader lease names it. */
  async standbySlot(): Promise<Slot | null> {
    const l = await readLease(this.buckets.leases, keys.leader).catch(() => null);
    return this.slots.find((x) => x.id === l?.value.standby && x.proc.running) ?? null;
  }

  /** Submit through the API, retrying until some node answers (nodes may be dead, cut off or between leaders); cancels are scheduled. */
  async submit(jobs: ChaosJob[]): Promise<void> {
    const call = <E extends EndpointName>(what: string, endpoint: E, body: RequestOf<E>) =>
      until(what, () => callApi(this.nc, this.names, endpoint, body, 2_000), 60_000, 100);
    await Promise.all(jobs.map(async (j) => {
      const reply = await call(`submit of ${j.id}`, 'jobs.submit', submitBody(j));
      this.observed.push(this.#observe({ kind: 'client', actor: j.id, event: clientSubmit, data: reply }));
      this.accepted.add(j.id);
      void this.#wait(j.id);
      if (j.kind === 'cancel') this.timeline.later(j.afterMs, () => call(`cancel of ${j.id}`, 'jobs.cancel', { id: j.id }));
    }));
  }

  /** A client waits for the job (asking again after a timeout or a fault) and records what the wait answered once it is final. */
  async #wait(id: string): Promise<void> {
    while (!this.#stopping) {
      const r = await callApi(this.nc, this.names, 'jobs.wait', { id, timeoutMs: 10_000 }, 12_000).catch(() => null);
      if (r && ['succeeded', 'failed', 'cancelled'].includes(r.state)) {
        this.observed.push(this.#observe({ kind: 'client', actor: id, event: clientWait, data: { record: r } }));
        return;
      }
      if (!r) await sleep(250);
    }
  }

  /** A node process is about to be killed: its handlers end there (the history's handler-overlap reads it). */
  noteKill(slot: Slot): void {
    this.observed.push(this.#observe({ kind: 'process', actor: slot.id, event: processKilled, data: { pid: slot.proc.pid } }));
  }

  /** The tail of each node's log, for failure reports. */
  logs(lines = 40): string {
    return this.slots.map((s) => `--- ${s.id} (pid ${s.proc.pid})\n${s.proc.output().split('\n').slice(-lines).join('\n')}`).join('\n');
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.timeline.cancel();
    await Promise.allSettled(this.slots.map((s) => s.proc.kill()));
    await Promise.allSettled(this.slots.flatMap((s) => s.proxies.map((p) => p.close())));
    await this.leaf?.[Symbol.asyncDispose]();
    await this.leafLink?.close();
    await this.#nc?.close().catch(() => {});
    if (this.cluster) await this.cluster.stop();
    else await Promise.all(this.servers.map((s) => s[Symbol.asyncDispose]()));
  }
}
