// A local cluster of real processes: nats-server(s) plus node processes, owned
// by the caller (`shoal up`, the demos, benches and tests), and waiting for the
// cluster to reach a state through the public status API.
import { connect } from '@nats-io/transport-node';
import { freePort, leafConfig, type NatsCluster, type NatsServer, startCluster, startServer } from './launcher.ts';
import { callApi } from '../nats/client.ts';
import type { StatusReply } from '../api/contract.ts';
import { names } from '../nats/subjects.ts';
import { type NodeProcess, type Runtime, spawnNode } from './spawn.ts';
import { sleep } from '../base/time.ts';
import { type ClusterAuth, prepareAuth } from './auth.ts';

export type UpOptions = {
  nodes: number;
  cluster: number;
  port: number;
  leaseTtlMs?: number;
  slots?: number;
  runtime?: Runtime;
  prefix?: string;
  /** Echo node logs (default true for `shoal up`). */
  echo?: boolean;
  /** Extra `shoal node` flags for every node. */
  nodeArgs?: string[];
  /** Prometheus metrics: node `nK` serves them on this port + K - 1. */
  metricsPort?: number;
  /** This nats-server binary instead of the one found (NATS_SERVER_BIN, the project cache, PATH). */
  serverBin?: string;
  /** More nats-server config for each server (by name), e.g. `leafnodes { listen: ... }`. */
  serverConfig?: (name: string) => string;
  /** The servers' JetStream domain (for leaf nodes: see test/integration/leaf.test.ts). */
  jsDomain?: string;
  /**
   * Edge sites: this many leaf-node nats-servers without JetStream, linked to every core server, each with
   * one edge node `e<i>` (`--js-domain core --label zone=edge`). The core servers get JetStream domain `core`.
   */
  leaf?: number;
  /** Restart a node process that exits (a drain, a crash) under the same id, until `stop()`: a supervisor. */
  restart?: boolean;
  /** Secure the servers: users admin, node and client with their permissions; connect files in this dir (`shoal up --auth`). */
  auth?: string;
  /** Per node (by id): other slots and more flags (a heterogeneous cluster). */
  perNode?: (id: string) => { slots?: number; args?: string[] };
};

export type LocalCluster = {
  urls: string[];
  /** What to connect with: the URLs, and the admin user with `auth`. */
  admin: Server;
  auth: ClusterAuth | null;
  servers: NatsServer[];
  /** The leaf-node servers (`leaf`), one per edge site. */
  leaves: NatsServer[];
  nodes: NodeProcess[];
  addNode(id: string, runtime?: Runtime): NodeProcess;
  /** The metrics port of a node (with `metricsPort`). */
  metricsPortOf(id: string): number | null;
  /** The last lines of every node's output, for failure messages. */
  logs(lines?: number): string;
  stop(): Promise<void>;
};

/** The JetStream domain of the core servers when there are edge sites (`leaf`). */
export const edgeDomain = 'core';

/** Start nats-server(s) and node processes; the caller owns the result. */
export async function startLocalCluster(options: UpOptions): Promise<LocalCluster> {
  let cluster: NatsCluster | null = null;
  let server: NatsServer | null = null;
  const auth = options.auth ? prepareAuth(options.auth, names(options.prefix)) : null;
  if (auth && options.leaf) throw new Error('--auth with --leaf is not supported yet: the leaf links would need credentials of their own');
  const leafPorts = options.leaf ? await Promise.all([0, 1, 2].map(() => freePort())) : [];
  const leafListen = (name: string) => (options.leaf ? leafConfig.listen(leafPorts)(name) : '');
  const config = (name: string) => [auth?.config, options.serverConfig?.(name), leafListen(name)].filter((x) => x).join('\n');
  const jsDomain = options.jsDomain ?? (options.leaf ? edgeDomain : undefined);
  if (options.cluster === 3) {
    cluster = await startCluster({ size: 3, port: options.port || undefined, bin: options.serverBin, config, jsDomain });
  } else server = await startServer({ port: options.port || undefined, bin: options.serverBin, config, jsDomain });
  const servers = cluster ? cluster.servers : [server!];
  const urls = servers.map((s) => s.url);
  auth?.writeFiles(urls);
  const admin = auth ? auth.connect('admin', urls) : { servers: urls };
  const nodes: NodeProcess[] = [];
  let stopping = false;
  const restartDelay = new Map<string, number>();
  const metricsPortOf = (id: string) => {
    const k = /^n(\d+)$/.exec(id)?.[1];
    return options.metricsPort === undefined || k === undefined ? null : options.metricsPort + Number(k) - 1;
  };
  const addNode = (id: string, runtime: Runtime = options.runtime ?? 'node') => {
    const metrics = metricsPortOf(id);
    const p = spawnNode({
      id,
      nats: urls.join(','),
      runtime,
      slots: options.perNode?.(id).slots ?? options.slots,
      leaseTtlMs: options.leaseTtlMs,
      replicas: options.cluster === 3 ? 3 : 1,
      prefix: options.prefix,
      echo: options.echo,
      args: [
        ...(auth ? ['--connect', auth.file('node')] : []),
        ...(options.nodeArgs ?? []),
        ...(options.perNode?.(id).args ?? []),
        ...(metrics === null ? [] : ['--metrics-port', String(metrics)]),
      ],
    });
    nodes.push(p);
    // A supervisor: the same id again once it exits (after a pause that doubles while it keeps exiting within 10 s).
    if (options.restart) {
      const started = Date.now();
      void p.exited.then(async () => {
        const quick = Date.now() - started < 10_000;
        const delay = quick ? Math.min(30_000, 2 * (restartDelay.get(id) ?? 250)) : 250;
        restartDelay.set(id, delay);
        await sleep(quick ? delay : 0);
        if (stopping) return;
        const i = nodes.indexOf(p);
        if (i >= 0) nodes.splice(i, 1);
        addNode(id, runtime);
      });
    }
    return p;
  };
  const leaves: NatsServer[] = [];
  const stop = async () => {
    stopping = true;
    await Promise.all(nodes.map((p) => p.stop()));
    await Promise.all(leaves.map((l) => l[Symbol.asyncDispose]()));
    if (cluster) await cluster.stop();
    if (server) await server[Symbol.asyncDispose]();
  };
  // Whatever fails from here on stops what was started so far.
  try {
    for (let i = 1; i <= options.nodes; i++) addNode(`n${i}`);
    for (let i = 1; i <= (options.leaf ?? 0); i++) {
      const leaf = await startServer({
        name: `leaf${i}`,
        bin: options.serverBin,
        jetstream: false,
        config: leafConfig.remotes(leafPorts.slice(0, servers.length)),
      });
      leaves.push(leaf);
      nodes.push(spawnNode({
        id: `e${i}`,
        nats: leaf.url,
        runtime: options.runtime,
        slots: options.slots,
        leaseTtlMs: options.leaseTtlMs,
        replicas: options.cluster === 3 ? 3 : 1,
        prefix: options.prefix,
        echo: options.echo,
        args: ['--js-domain', edgeDomain, '--label', 'zone=edge', ...(options.nodeArgs ?? [])],
      }));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const logs = (lines = 20) =>
    nodes.map((p) => `--- ${p.id} (pid ${p.pid})\n${p.output().split('\n').slice(-lines).join('\n')}`).join('\n');
  return { urls, admin, auth, servers, leaves, nodes, addNode, metricsPortOf, logs, stop };
}

/** The servers' URLs, or connect options with credentials (`LocalCluster.admin`). */
export type Server = string[] | { servers: string[]; user?: string; pass?: string; token?: string };

/** Ask the API until the cluster view satisfies `pred` (or the deadline passes). */
export async function waitForStatus(
  server: Server,
  pred: (s: StatusReply) => boolean,
  options: { what?: string; prefix?: string; timeoutMs?: number } = {},
): Promise<StatusReply> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const nc = await connect({ ...(Array.isArray(server) ? { servers: server } : server), maxReconnectAttempts: -1 });
  const deadline = Date.now() + timeoutMs;
  try {
    let last: unknown = null;
    while (Date.now() < deadline) {
      try {
        const s = await callApi(nc, names(options.prefix), 'status', {}, 1_000);
        if (pred(s)) return s;
        last = null;
      } catch (err) {
        last = err;
      }
      await sleep(50);
    }
    throw new Error(
      `no ${options.what ?? 'matching status'} within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`,
    );
  } finally {
    await nc.close();
  }
}

export function waitForLeader(urls: Server, prefix?: string, timeoutMs?: number): Promise<StatusReply> {
  return waitForStatus(urls, (s) => s.leader !== null, { what: 'leader', prefix, timeoutMs });
}

/** A leader, and `count` nodes all ready. */
export function waitForReady(urls: Server, count: number, options: { prefix?: string; timeoutMs?: number } = {}): Promise<StatusReply> {
  return waitForStatus(urls, (s) => s.leader !== null && s.nodes.length === count && s.nodes.every((x) => x.state === 'ready'), {
    what: `leader and ${count} ready nodes`,
    ...options,
  });
}
