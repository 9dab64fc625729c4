// Job handlers: plain async functions by type. Built-ins cover demos and
// benchmarks; users add their own with `shoal node --jobs ./module.ts`.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TypeSettings } from '../api/contract.ts';
import { builtinSchemas, isStandardSchema, moduleSchemas, primesMax, type StandardSchema } from './input.schemas.ts';

export type JobCtx = {
  /** Save state and progress (0..1); a resumed attempt gets it back as `restored`. */
  checkpoint(state: unknown, progress: number): Promise<void>;
  /** State of the last checkpoint of an earlier attempt, or undefined. */
  restored: unknown;
  progress(p: number): void;
  /**
   * `'io'`: this job now waits on I/O and gives its compute slot back (within
   * the node's I/O limit; beyond it, it keeps the slot). `'compute'`: resolves
   * once it holds a compute slot again (await it before computing).
   */
  phase(p: 'compute' | 'io'): Promise<void>;
  /**
   * Aborted on cancel, preemption, lease loss or timeout. On preemption (and a
   * drain) the reason says so and the job may still `checkpoint` for a grace
   * period (default 1 s); then its attempt ends and it resumes later from there.
   */
  signal: AbortSignal;
  /** Wait on the node's clock; rejects when `signal` aborts. */
  sleep(ms: number): Promise<void>;
  /** Fencing token for writes outside Shoal: `${jobId}:${attempt}`; a larger attempt supersedes. */
  fence: { jobId: string; attempt: number; token: string };
  log(msg: string): void;
};

/** What the runner tells a handler's host beside `ctx` (handlers themselves ignore it). */
export type HandlerControl = {
  /** After the signal aborted: how long the attempt may still checkpoint (preempted or draining), else 0. */
  graceLeftMs(): number;
};

// deno-lint-ignore no-explicit-any
export type Handler = (input: any, ctx: JobCtx, control?: HandlerControl) => Promise<unknown>;

export class JobInputError extends Error {
  readonly code = 'BAD_JOB_INPUT';
  constructor(message: string) {
    super(message);
    this.name = 'JobInputError';
  }
}

function aborted(signal: AbortSignal): never {
  throw signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason ?? 'aborted'));
}

function num(input: Record<string, unknown>, key: string, dflt?: number): number {
  const v = input?.[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new JobInputError(`input.${key} must be a non-negative number`);
  return v;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** The true answer, for checking results that survived migrations. */
export function countPrimes(limit: number): number {
  let c = 0;
  for (let n = 2; n <= limit; n++) if (isPrime(n)) c++;
  return c;
}

export const builtinHandlers: Record<string, Handler> = {
  noop: async () => null,

  sleep: async (input, ctx) => {
    const ms = num(input, 'ms');
    await ctx.phase('io');
    await ctx.sleep(ms);
    return { sleptMs: ms };
  },

  /** Counts primes <= limit chunk by chunk, checkpointing { next, count } after each. */
  primes: async (input, ctx) => {
    const limit = num(input, 'limit');
    const chunk = Math.max(1, num(input, 'chunk', 10_000));
    // Checked at submit too; here for a record that predates the bounds: each chunk must end soon (it yields only between).
    if (limit > primesMax.limit || chunk > primesMax.chunk) {
      throw new JobInputError(`primes: limit ≤ ${primesMax.limit} and chunk ≤ ${primesMax.chunk}`);
    }
    const pauseMs = num(input, 'pauseMs', 0);
    const r = ctx.restored as { next: number; count: number } | undefined;
    let next = r?.next ?? 2;
    let count = r?.count ?? 0;
    while (next <= limit) {
      if (ctx.signal.aborted) aborted(ctx.signal);
      const end = Math.min(limit, next + chunk - 1);
      for (let n = next; n <= end; n++) if (isPrime(n)) count++;
      next = end + 1;
      await ctx.checkpoint({ next, count }, Math.min(1, (next - 2) / Math.max(1, limit - 1)));
      if (pauseMs > 0 && next <= limit) await ctx.sleep(pauseMs);
    }
    return { count };
  },

  /** Always fails with `message` (retried like any failure): for tests and demos of retries and dead letters. */
  fail: async (input) => {
    throw new Error(typeof input?.message === 'string' ? input.message : 'failed as asked (the fail built-in)');
  },
};

/**
 * Runs a command on the node; killed on abort. Non-zero exit fails the attempt.
 * Registered only on nodes started with `--allow-exec`: whoever may submit a
 * job could otherwise run anything as the node's user. The command gets a clean
 * environment (PATH and what `input.env` sets), never the node's own (its
 * credentials). See docs/operations.md, Security.
 */
export const execHandler: Handler = async (input, ctx) => {
  const cmd = input?.cmd;
  if (typeof cmd !== 'string' || !cmd) throw new JobInputError('input.cmd must be a command name');
  const args = Array.isArray(input.args) ? input.args.map(String) : [];
  await ctx.phase('io');
  const tail = (s: string) => s.slice(-4096);
  return await new Promise((res, rej) => {
    const child = spawn(cmd, args, {
      cwd: input.cwd,
      env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', ...(input.env ?? {}) },
      signal: ctx.signal,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout = tail(stdout + b.toString())));
    child.stderr.on('data', (b: Buffer) => (stderr = tail(stderr + b.toString())));
    child.on('error', rej);
    child.on('close', (code, sig) => {
      if (code === 0) res({ exitCode: 0, stdout, stderr });
      else rej(new Error(`${cmd} exited with ${code ?? sig}; stderr: ${stderr.slice(-500)}`));
    });
  });
};

export type JobTypes = {
  handlers: Record<string, Handler>;
  schemas: Record<string, StandardSchema | Record<string, unknown>>;
  /** Types' settings (retry, timeout), from `defineJob`. */
  settings?: Record<string, TypeSettings>;
};

/** The built-ins, with `exec` only when the operator allowed it. */
function builtins(allowExec: boolean): JobTypes {
  const { exec, ...schemas } = builtinSchemas;
  return allowExec
    ? { handlers: { ...builtinHandlers, exec: execHandler }, schemas: { ...schemas, exec: exec! } }
    : { handlers: { ...builtinHandlers }, schemas };
}

/**
 * Built-ins plus a user module's handlers (its default export or named exports
 * that are functions) and their input schemas (its `schemas` export).
 */
export async function loadJobTypes(modulePath?: string, options: { allowExec?: boolean } = {}): Promise<JobTypes> {
  const base = builtins(options.allowExec === true);
  if (!modulePath) return base;
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(resolve(modulePath)).href);
  } catch (err) {
    throw new Error(`cannot load job handlers from ${modulePath}: ${(err as Error).message}`, { cause: err });
  }
  const source = (typeof mod.default === 'object' && mod.default !== null ? mod.default : mod) as Record<string, unknown>;
  const user = Object.fromEntries(
    Object.entries(source).filter(([k, v]) => k !== 'default' && typeof v === 'function' && !isStandardSchema(v)),
  ) as Record<
    string,
    Handler
  >;
  if (Object.keys(user).length === 0) {
    throw new Error(`${modulePath} exports no handler functions (export async function myType(input, ctx) {...})`);
  }
  const schemas = moduleSchemas(source.schemas, Object.keys(user), modulePath);
  return { handlers: { ...base.handlers, ...user }, schemas: { ...base.schemas, ...schemas } };
}
