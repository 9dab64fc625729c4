// Handlers off the node's event loop. A job module's handlers run in worker
// threads, one attempt per thread,
// so a handler that never yields cannot starve the node's lease renewals,
// pings and API service: its timeout still fires on the node's thread, the
// attempt ends, and a thread that does not stop within `handlerStopMs` of its
// signal is terminated and replaced. The built-ins stay on the node's thread
// (a thread round trip costs ~60 µs, and noop should not pay it): they only
// wait, or (`primes`) compute in bounded chunks between checkpoints. A node
// with a module starts `keepIdle` threads at once (a thread takes ~0.5 s to
// load its module from TypeScript) and keeps that many warm; `ctx` calls cross
// as messages (node/handler.wire.ts).
import { Worker } from 'node:worker_threads';
import { type Clock, realClock } from '../base/time.ts';
import { defaults } from '../base/defaults.ts';
import { builtinHandlers, execHandler, type Handler, type HandlerControl, type JobCtx, type JobTypes } from './handlers.ts';
import { errorFromWire, errorToWire, type ToNode, type ToWorker } from './handler.wire.ts';
import type { Log } from './log.ts';

/** The built-ins' own functions: they run on the node's thread (a module's function of the same name does not). */
const inline: ReadonlySet<Handler> = new Set([...Object.values(builtinHandlers), execHandler]);

type Thread = {
  worker: Worker;
  ready: Promise<void>;
  /** The attempt it runs now: where its messages go, and what to do if the thread goes away. */
  onMessage?: (m: Exclude<ToNode, { t: 'ready' }>) => void;
  onGone?: (why: string) => void;
};

export type PoolOptions = { modulePath?: string; allowExec: boolean; keepIdle: number; clock: Clock; log: Log };

const self = import.meta.url;
const entry = new URL(`./handler.worker${self.slice(self.lastIndexOf('.'))}`, self);

/** From TypeScript source on Node, the thread registers tsx first (Deno and built JavaScript need nothing). */
function startWorker(data: unknown): Worker {
  if (entry.pathname.endsWith('.ts') && !('Deno' in globalThis)) {
    const tsx = import.meta.resolve('tsx/esm/api');
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
    return new Worker(code, { eval: true, workerData: data });
  }
  return new Worker(entry, { workerData: data });
}

/** A node's handlers as it runs them: through a pool of threads unless `inlineHandlers`. */
export function threadedHandlers(
  types: JobTypes,
  o: { jobs: string | null; allowExec: boolean; inlineHandlers: boolean; capacity: { slots: number; ioSlots: number } },
  log: Log,
): { handlers: Record<string, Handler>; pool: HandlerPool | null } {
  if (o.inlineHandlers || !o.jobs) return { handlers: types.handlers, pool: null }; // the built-ins run inline
  const keepIdle = Math.min(o.capacity.slots + o.capacity.ioSlots, defaults.handlerThreadsIdle);
  const pool = new HandlerPool({ modulePath: o.jobs, allowExec: o.allowExec, keepIdle, clock: realClock, log });
  pool.warm();
  return { handlers: pool.route(types.handlers), pool };
}

export class HandlerPool {
  readonly #o: PoolOptions;
  #idle: Thread[] = [];
  #live = new Set<Thread>();
  #calls = 0;
  #closed = false;

  constructor(options: PoolOptions) {
    this.#o = options;
  }

  /** The node's handlers: the built-ins as they are, every module type through a thread. */
  route(handlers: Record<string, Handler>): Record<string, Handler> {
    return Object.fromEntries(Object.entries(handlers).map(([type, h]) => [type, inline.has(h) ? h : this.handler(type)]));
  }

  handler(type: string): Handler {
    return (input, ctx, control) => this.#run(type, input, ctx, control);
  }

  /** Start threads up to `keepIdle` now, so the first attempts do not wait for a module to load. */
  warm(): void {
    while (!this.#closed && this.#idle.length < this.#o.keepIdle) this.#idle.push(this.#spawn());
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#live].map((t) => t.worker.terminate()));
  }

  #spawn(): Thread {
    const worker = startWorker({ modulePath: this.#o.modulePath, allowExec: this.#o.allowExec });
    worker.unref();
    const thread: Thread = {
      worker,
      ready: new Promise<void>((resolve, reject) => {
        const onExit = (code: number) => reject(new Error(`the handler thread exited with code ${code} while loading`));
        worker.once('exit', onExit);
        worker.once('message', (m: ToNode) => {
          worker.off('exit', onExit);
          if (m.t === 'ready') resolve();
        });
      }),
    };
    thread.ready.catch(() => {}); // its attempt hears of it
    worker.on('message', (m: ToNode) => {
      if (m.t !== 'ready') thread.onMessage?.(m);
    });
    worker.on('error', (err) => {
      this.#o.log(`a handler thread failed: ${err.message}`);
      thread.onGone?.(`failed: ${err.message}`);
    });
    worker.on('exit', (code) => {
      this.#live.delete(thread);
      this.#idle = this.#idle.filter((t) => t !== thread);
      thread.onGone?.(`exited with code ${code}`);
    });
    this.#live.add(thread);
    return thread;
  }

  #release(thread: Thread) {
    thread.onMessage = thread.onGone = undefined;
    if (!this.#closed && this.#live.has(thread) && this.#idle.length < this.#o.keepIdle) this.#idle.push(thread);
    else void thread.worker.terminate();
  }

  async #run(type: string, input: unknown, ctx: JobCtx, control?: HandlerControl): Promise<unknown> {
    if (this.#closed) throw new Error('the node is stopping');
    const thread = this.#idle.pop() ?? this.#spawn();
    await thread.ready;
    const call = ++this.#calls;
    const { clock } = this.#o;
    const post = (m: ToWorker) => {
      try {
        thread.worker.postMessage(m);
      } catch { /* the thread is gone: its exit settles the attempt */ }
    };
    let killTimer: unknown;
    const onAbort = () => {
      post({ t: 'abort', call, reason: errorToWire(ctx.signal.reason) });
      const within = (control?.graceLeftMs() ?? 0) + defaults.handlerStopMs;
      killTimer = clock.setTimeout(() => {
        this.#o.log(`job ${ctx.fence.jobId}#${ctx.fence.attempt}: its handler ignored its signal for ${within} ms; its thread is replaced`);
        void thread.worker.terminate();
      }, within);
    };
    let ok = false;
    try {
      return await new Promise<unknown>((resolve, reject) => {
        thread.onGone = (why) => reject(new Error(`the handler thread ${why}`));
        thread.onMessage = (m) => {
          if (m.call !== call) return;
          if (m.t === 'done') {
            ok = true;
            return m.ok ? resolve(m.result) : reject(errorFromWire(m.error));
          }
          if (m.t === 'progress') return ctx.progress(m.p);
          if (m.t === 'log') return ctx.log(m.msg);
          const [a, b] = m.args as [never, never];
          const asked = m.op === 'checkpoint' ? ctx.checkpoint(a, b) : m.op === 'phase' ? ctx.phase(a) : ctx.sleep(a);
          asked.then(
            () => post({ t: 'reply', call, seq: m.seq }),
            (err) => post({ t: 'reply', call, seq: m.seq, error: errorToWire(err) }),
          );
        };
        if (ctx.signal.aborted) onAbort();
        else ctx.signal.addEventListener('abort', onAbort, { once: true });
        thread.worker.postMessage(
          { t: 'run', call, type, input, restored: ctx.restored, fence: ctx.fence } satisfies ToWorker,
        );
      });
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      if (killTimer !== undefined) clock.clearTimeout(killTimer);
      if (ok) this.#release(thread);
      else if (this.#live.has(thread)) {
        thread.onMessage = thread.onGone = undefined;
        void thread.worker.terminate();
      }
    }
  }
}
