// The one nats-server launcher (tests, `shoal up`, demo, benches, chaos): finds
// a binary >= 2.10, starts a single server or a 3-server JetStream cluster on
// free loopback ports with its own store dirs, and kills/stops/restarts any one.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../base/time.ts';

export { cachedNatsServer, cachedNewestNatsServer, findNatsServer, type NatsServerBinary } from './nats.binary.ts';
import { findNatsServer, type NatsServerBinary } from './nats.binary.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const live = new Set<NatsServer>();
let exitHooked = false;

/** Synchronous last resort for exit handlers: no server of ours outlives us. */
export function stopAllServers(): void {
  for (const s of live) s.killSync();
}

export type ServerOptions = {
  bin?: string;
  allowOld?: boolean;
  port?: number;
  dir?: string;
  jetstream?: boolean;
  /** More nats-server config (an `authorization` block), appended to each server's; a function: per server (by name). */
  config?: string | ((name: string) => string);
  /** Server name (a single server; default s1). */
  name?: string;
  /** The JetStream domain (what a leaf node's clients name with --js-domain). */
  jsDomain?: string;
};

type ServerConfig = {
  name: string;
  port: number;
  monitorPort: number;
  clusterPort: number;
  routes: number[];
  dir: string;
  jetstream: boolean;
  extra?: string;
  jsDomain?: string;
};

export class NatsServer {
  readonly name: string;
  readonly port: number;
  readonly monitorPort: number;
  readonly clusterPort: number;
  readonly dir: string;
  readonly storeDir: string;
  readonly jetstream: boolean;
  readonly bin: NatsServerBinary;
  readonly #ownsDir: boolean;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();

  constructor(bin: NatsServerBinary, cfg: ServerConfig, ownsDir: boolean) {
    this.bin = bin;
    this.name = cfg.name;
    this.port = cfg.port;
    this.monitorPort = cfg.monitorPort;
    this.clusterPort = cfg.clusterPort;
    this.dir = cfg.dir;
    this.storeDir = join(cfg.dir, 'jetstream');
    this.jetstream = cfg.jetstream;
    this.#ownsDir = ownsDir;
    const lines = [
      `server_name: ${cfg.name}`,
      `listen: 127.0.0.1:${cfg.port}`,
      `http: 127.0.0.1:${cfg.monitorPort}`,
      // Drop a frozen client within ~6 s (default 2 min): its subscriptions, the API queue
      // group among them, would black-hole requests meanwhile.
      'ping_interval: "2s"',
      'ping_max: 2',
    ];
    const domain = cfg.jsDomain ? `, domain: ${cfg.jsDomain}` : '';
    if (cfg.jetstream) lines.push(`jetstream { store_dir: "${this.storeDir}", max_memory_store: 256MB, max_file_store: 4GB${domain} }`);
    if (cfg.clusterPort) {
      const routes = cfg.routes.map((p) => `"nats://127.0.0.1:${p}"`).join(', ');
      lines.push(`cluster { name: shoal, listen: 127.0.0.1:${cfg.clusterPort}, routes: [${routes}] }`);
    }
    if (cfg.extra) lines.push(cfg.extra);
    // It may hold passwords: readable by its owner only.
    writeFileSync(this.configFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }
  get configFile(): string {
    return join(this.dir, 'server.conf');
  }
  get logFile(): string {
    return join(this.dir, 'server.log');
  }
  get pid(): number | undefined {
    return this.#child?.pid;
  }
  get running(): boolean {
    return this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Start the process (not waiting for readiness: see `waitReady`). */
  launch(): void {
    if (this.running) return;
    const log = openSync(this.logFile, 'a');
    const child = spawn(this.bin.path, ['-c', this.configFile], { stdio: ['ignore', log, log] });
    closeSync(log);
    this.#child = child;
    this.#exited = new Promise((resolve) => child.on('exit', () => resolve()));
    live.add(this);
    void this.#exited.then(() => live.delete(this));
    if (!exitHooked) {
      exitHooked = true;
      process.on('exit', stopAllServers);
    }
  }

  /** Poll the monitoring endpoint until JetStream answers (and, in a cluster, knows its meta leader). */
  async waitReady(timeoutMs = 20_000, clustered = this.clusterPort > 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`nats-server ${this.name} exited during start-up:\n${this.logTail()}`);
      try {
        const r = await fetch(`http://127.0.0.1:${this.monitorPort}/jsz`, { signal: AbortSignal.timeout(1_000) });
        if (r.ok) {
          const j = (await r.json()) as { disabled?: boolean; meta_cluster?: { leader?: string; replicas?: Array<{ current?: boolean }> } };
          const leader = j.meta_cluster?.leader ?? '';
          // The meta leader lists its peers: placement of replicated streams needs them current.
          const peers = j.meta_cluster?.replicas;
          const peersCurrent = leader !== this.name || (peers !== undefined && peers.length > 0 && peers.every((p) => p.current));
          // A server without JetStream of its own (a leaf node) is ready once it answers.
          if (!this.jetstream || (j.disabled !== true && (!clustered || (leader && peersCurrent)))) return leader;
        }
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`nats-server ${this.name} not ready within ${timeoutMs} ms:\n${this.logTail()}`);
  }

  /** The JetStream meta group as this server's /jsz reports it (null if it does not answer). */
  async meta(): Promise<{ leader: string; peers: Array<{ name: string; current?: boolean; offline?: boolean }> } | null> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.monitorPort}/jsz`, { signal: AbortSignal.timeout(1_000) });
      if (!r.ok) return null;
      const j = (await r.json()) as {
        meta_cluster?: { leader?: string; replicas?: Array<{ name: string; current?: boolean; offline?: boolean }> };
      };
      return { leader: j.meta_cluster?.leader ?? '', peers: j.meta_cluster?.replicas ?? [] };
    } catch {
      return null;
    }
  }

  /** Send a signal; SIGKILL/SIGTERM resolve once the process has exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.#child!.kill('SIGCONT');
    this.#child!.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') await this.#exited;
  }
  killSync(): void {
    try {
      this.#child?.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  pause = () => this.running && this.#child!.kill('SIGSTOP');
  resume = () => this.running && this.#child!.kill('SIGCONT');
  async stop(): Promise<void> {
    if (!this.running) return;
    const t = setTimeout(() => this.killSync(), 5_000);
    await this.kill('SIGTERM');
    clearTimeout(t);
  }
  /** Same ports, same store dir. */
  async restart(): Promise<void> {
    await this.stop();
    this.launch();
    await this.waitReady();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    if (this.#ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function makeDir(dir?: string): { dir: string; owns: boolean } {
  if (dir) {
    mkdirSync(dir, { recursive: true });
    return { dir, owns: false };
  }
  return { dir: mkdtempSync(join(tmpdir(), 'shoal-nats-')), owns: true };
}

/**
 * Why: a port freePort() found free can be taken (as some socket's ephemeral port) before the server
 * binds it; seen in CI as "bind: address already in use". Start again with other ports, up to 3 times.
 */
async function retryOnPortClash<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test(String(err))) throw err;
    }
  }
}

/** Leaf-node links: core server sN listens on the N-th port; a leaf server without JetStream dials them all. */
export const leafConfig = {
  listen: (ports: number[]) => (name: string) => `leafnodes { listen: 127.0.0.1:${ports[Number(name.slice(1)) - 1]} }`,
  remotes: (ports: number[]) => `leafnodes { remotes: [ { urls: [${ports.map((p) => `"nats://127.0.0.1:${p}"`).join(', ')}] } ] }`,
};

export function startServer(opts: ServerOptions = {}): Promise<NatsServer> {
  return retryOnPortClash(() => startServerOnce(opts));
}

async function startServerOnce(opts: ServerOptions): Promise<NatsServer> {
  const bin = await findNatsServer({ bin: opts.bin, allowOld: opts.allowOld });
  const { dir, owns } = makeDir(opts.dir);
  const s = new NatsServer(bin, {
    name: opts.name ?? 's1',
    port: opts.port || (await freePort()),
    monitorPort: await freePort(),
    clusterPort: 0,
    routes: [],
    dir,
    jetstream: opts.jetstream ?? true,
    extra: typeof opts.config === 'function' ? opts.config(opts.name ?? 's1') : opts.config,
    jsDomain: opts.jsDomain,
  }, owns);
  s.launch();
  try {
    await s.waitReady();
  } catch (err) {
    await s[Symbol.asyncDispose]();
    throw err;
  }
  return s;
}

export class NatsCluster {
  readonly servers: NatsServer[];
  readonly #root: string;
  readonly #ownsRoot: boolean;

  constructor(servers: NatsServer[], root: string, ownsRoot: boolean) {
    this.servers = servers;
    this.#root = root;
    this.#ownsRoot = ownsRoot;
  }
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }
  kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.servers[i]!.kill(signal);
  }
  restart(i: number): Promise<void> {
    return this.servers[i]!.restart();
  }
  /**
   * Every running server reports the same JetStream meta leader, and the leader lists every other
   * running server as a current, online meta peer: only then can an R3 stream or KV be placed.
   * With `restartStrayAfterMs`, a server still not a current peer of the leader that long is
   * restarted (nats-server 2.10 can leave one out of the meta group for good, see startCluster).
   */
  async waitReady(timeoutMs = 30_000, restartStrayAfterMs = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const members = this.servers.filter((s) => s.running);
    const straySince = new Map<NatsServer, number>();
    let missing: string[] = [];
    while (Date.now() < deadline) {
      const dead = members.find((s) => !s.running);
      if (dead) throw new Error(`nats-server ${dead.name} exited during start-up:\n${dead.logTail()}`);
      const metas = await Promise.all(members.map((s) => s.meta()));
      const leader = members.find((s, i) => metas[i]?.leader === s.name);
      if (leader) {
        const peers = metas[members.indexOf(leader)]!.peers;
        const stray = members.filter((s) => s !== leader && !peers.some((p) => p.name === s.name && p.current && !p.offline));
        if (stray.length === 0 && metas.every((m) => m?.leader === leader.name)) return;
        missing = stray.map((s) => s.name);
        for (const s of [...straySince.keys()]) if (!stray.includes(s)) straySince.delete(s);
        for (const s of stray) {
          if (!straySince.has(s)) straySince.set(s, Date.now());
          if (restartStrayAfterMs > 0 && Date.now() - straySince.get(s)! >= restartStrayAfterMs) {
            await s.stop();
            s.launch();
            straySince.delete(s);
          }
        }
      }
      await sleep(100);
    }
    throw new Error(`cluster not ready within ${timeoutMs} ms${missing.length ? ` (not current meta peers: ${missing.join(', ')})` : ''}`);
  }
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
    if (this.#ownsRoot) rmSync(this.#root, { recursive: true, force: true });
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

export function startCluster(opts: ServerOptions & { size?: number } = {}): Promise<NatsCluster> {
  return retryOnPortClash(() => startClusterOnce(opts));
}

async function startClusterOnce(opts: ServerOptions & { size?: number }): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  const bin = await findNatsServer({ bin: opts.bin, allowOld: opts.allowOld });
  const { dir: root, owns } = makeDir(opts.dir);
  const ports: Array<{ port: number; monitorPort: number; clusterPort: number }> = [];
  const used = new Set<number>(opts.port ? [opts.port] : []);
  // Why: freePort() can return a port it returned a moment ago (~1 batch in 200): two of our listeners on one port.
  const unusedPort = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (used.has(p)) continue;
      used.add(p);
      return p;
    }
  };
  for (let i = 0; i < size; i++) {
    ports.push({
      port: i === 0 && opts.port ? opts.port : await unusedPort(),
      monitorPort: await unusedPort(),
      clusterPort: await unusedPort(),
    });
  }
  const servers = ports.map((p, i) => {
    const dir = join(root, `s${i + 1}`);
    mkdirSync(dir, { recursive: true });
    return new NatsServer(bin, {
      name: `s${i + 1}`,
      ...p,
      dir,
      jetstream: opts.jetstream ?? true,
      extra: typeof opts.config === 'function' ? opts.config(`s${i + 1}`) : opts.config,
      jsDomain: opts.jsDomain,
      routes: ports.filter((_, j) => j !== i).map((q) => q.clusterPort),
    }, false);
  });
  const cluster = new NatsCluster(servers, root, owns);
  servers.forEach((s) => s.launch());
  try {
    // Why: ~1 start in 20, nats-server 2.10 forms the meta group without a server whose raft traffic never arrives; only a restart brings it in.
    await cluster.waitReady(30_000, 5_000);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
