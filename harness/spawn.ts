// Starts node processes (Node via tsx's loader, or Deno) as single OS
// processes, so a pid we report is the pid that `kill -9` hits. Used by
// `shoal up`, the demo, tests, benches and the chaos suite. Compiled (an
// installed package's dist/), it starts the compiled CLI with plain Node.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaults } from '../base/defaults.ts';
import denoConfig from '../deno.json' with { type: 'json' };

const self = import.meta.url;
/** `.ts` in a clone, `.js` in the compiled package. */
const ext = self.slice(self.lastIndexOf('.'));
const root = join(dirname(fileURLToPath(self)), '..');
const cli = join(root, 'cli', `main${ext}`);

export type Runtime = 'node' | 'deno';

export function denoBinary(): string {
  if (process.env.DENO_BIN) return process.env.DENO_BIN;
  const req = createRequire(import.meta.url);
  for (const pkg of ['@deno/linux-x64-glibc', '@deno/linux-arm64-glibc', '@deno/darwin-arm64', '@deno/darwin-x64']) {
    try {
      const bin = join(dirname(req.resolve(`${pkg}/package.json`)), 'deno');
      if (existsSync(bin)) return bin;
    } catch {
      // not this platform
    }
  }
  return 'deno';
}

/**
 * argv that runs a script of the project with Node (a TypeScript one through tsx); with SHOAL_CPU_PROF=DIR each
 * process writes a CPU profile there.
 */
export function tsCommand(script: string, args: string[]): [string, string[]] {
  const node = (globalThis as { Deno?: unknown }).Deno ? 'node' : process.execPath;
  const prof = process.env.SHOAL_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SHOAL_CPU_PROF}`] : [];
  const loader = script.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
  return [node, [...prof, ...loader, script, ...args]];
}

/** argv that runs `shoal <args>` in one process of the given runtime; under Deno, what `deno task shoal` runs (cwd: the project). */
export function shoalCommand(runtime: Runtime, args: string[]): [string, string[]] {
  if (runtime === 'deno') return [denoBinary(), [...denoConfig.tasks.shoal.split(' ').slice(1), ...args]];
  return tsCommand(cli, args);
}

export type NodeSpec = {
  id: string;
  nats: string;
  runtime?: Runtime;
  slots?: number;
  leaseTtlMs?: number;
  replicas?: number;
  prefix?: string;
  /** Extra CLI args for `shoal node`. */
  args?: string[];
  /** Copy the process's output to ours, prefixed. */
  echo?: boolean;
  /** Extra environment variables. */
  env?: Record<string, string>;
};

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export class NodeProcess {
  readonly spec: NodeSpec;
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  #output: string[] = [];
  #waiters: Array<{ re: RegExp; resolve: (line: string) => void }> = [];

  constructor(spec: NodeSpec) {
    this.spec = spec;
    const args = ['node', '--nats', spec.nats, '--id', spec.id];
    if (spec.slots !== undefined) args.push('--slots', String(spec.slots));
    if (spec.leaseTtlMs !== undefined) args.push('--lease-ttl', String(spec.leaseTtlMs));
    if (spec.replicas !== undefined) args.push('--replicas', String(spec.replicas));
    if (spec.prefix !== undefined) args.push('--prefix', spec.prefix);
    args.push(...(spec.args ?? []));
    const [cmd, argv] = shoalCommand(spec.runtime ?? 'node', args);
    this.child = spawn(cmd, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', ...spec.env } });
    live.add(this);
    const onData = (buf: Buffer) => {
      for (const line of buf.toString().split('\n')) {
        if (!line) continue;
        this.#output.push(line);
        if (this.#output.length > 2000) this.#output.shift();
        if (spec.echo) process.stderr.write(`${line}\n`);
        this.#waiters = this.#waiters.filter((w) => (w.re.test(line) ? (w.resolve(line), false) : true));
      }
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        live.delete(this);
        resolve({ code, signal });
      });
    });
  }

  get id(): string {
    return this.spec.id;
  }
  get pid(): number {
    return this.child.pid ?? -1;
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  output(): string {
    return this.#output.join('\n');
  }

  /** Resolves with the first output line (past or future) matching `re`. */
  waitForLine(re: RegExp, timeoutMs = 30_000): Promise<string> {
    const seen = this.#output.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`node ${this.id}: no line matching ${re} within ${timeoutMs} ms\n${this.output()}`)),
        timeoutMs,
      );
      this.#waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) });
      void this.exited.then((e) => reject(new Error(`node ${this.id} exited (${e.code ?? e.signal}) before ${re}\n${this.output()}`)));
    });
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }
  async kill(): Promise<Exit> {
    this.signal('SIGCONT'); // a stopped process still dies on SIGKILL, but keep it simple to reason about
    this.signal('SIGKILL');
    return this.exited;
  }
  pause(): void {
    this.signal('SIGSTOP');
  }
  resume(): void {
    this.signal('SIGCONT');
  }
  /** SIGTERM (a graceful drain), then SIGKILL after the grace period. */
  async stop(graceMs: number = defaults.stopGraceMs): Promise<Exit> {
    if (!this.running) return this.exited;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const e = await this.exited;
    clearTimeout(t);
    return e;
  }
}

const live = new Set<NodeProcess>();
let hooked = false;

export function spawnNode(spec: NodeSpec): NodeProcess {
  if (!hooked) {
    hooked = true;
    process.on('exit', killAllNodes);
  }
  return new NodeProcess(spec);
}

/** Synchronous last resort for exit handlers: no process of ours outlives us. */
export function killAllNodes(): void {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}
