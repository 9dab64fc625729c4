// The thread a job handler runs in (node/handler.pool.ts starts it): it loads
// the node's job types once, then runs one attempt at a time. `ctx` here is a
// proxy: checkpoints, phases and sleeps are asked of the node's thread, which
// owns the lease, the clock and every write; progress and logs are told.
import { parentPort, workerData } from 'node:worker_threads';
import { loadJobTypes } from './handlers.ts';
import type { JobCtx } from './handlers.ts';
import { errorFromWire, errorToWire, type ToNode, type ToWorker } from './handler.wire.ts';

const port = parentPort!;
const { modulePath, allowExec } = workerData as { modulePath?: string; allowExec: boolean };
const { handlers } = await loadJobTypes(modulePath, { allowExec });

let current: { call: number; abort: AbortController; seq: number; waiting: Map<number, (m: ToWorker) => void> } | undefined;
const send = (m: ToNode) => port.postMessage(m);

function ctxFor(call: number, m: Extract<ToWorker, { t: 'run' }>): JobCtx {
  const c = current!;
  const ask = (op: 'checkpoint' | 'phase' | 'sleep', args: unknown[]) =>
    new Promise<void>((resolve, reject) => {
      const seq = ++c.seq;
      c.waiting.set(seq, (r) => r.t === 'reply' && r.error ? reject(errorFromWire(r.error)) : resolve());
      send({ t: 'ask', call, seq, op, args });
    });
  return {
    restored: m.restored,
    signal: c.abort.signal,
    fence: m.fence,
    log: (msg) => send({ t: 'log', call, msg: String(msg) }),
    progress: (p) => send({ t: 'progress', call, p }),
    phase: (p) => ask('phase', [p]),
    sleep: (ms) => ask('sleep', [ms]),
    checkpoint: (state, progress) => ask('checkpoint', [state, progress]),
  };
}

async function run(m: Extract<ToWorker, { t: 'run' }>) {
  current = { call: m.call, abort: new AbortController(), seq: 0, waiting: new Map() };
  try {
    const handler = handlers[m.type];
    if (!handler) throw Object.assign(new Error(`job type '${m.type}' is not loaded in the handler thread`), { name: 'JobInputError' });
    const result = (await handler(m.input, ctxFor(m.call, m))) ?? null;
    try {
      send({ t: 'done', call: m.call, ok: true, result });
    } catch (err) {
      // A result the structured clone cannot carry (functions, class instances with private state…).
      send({
        t: 'done',
        call: m.call,
        ok: false,
        error: { name: 'JobInputError', message: `the handler's result cannot be sent: ${(err as Error).message}` },
      });
    }
  } catch (err) {
    send({ t: 'done', call: m.call, ok: false, error: errorToWire(err) });
  } finally {
    current = undefined;
  }
}

port.on('message', (m: ToWorker) => {
  if (m.t === 'run') return void run(m);
  if (!current || m.call !== current.call) return; // about an attempt already over
  if (m.t === 'abort') current.abort.abort(errorFromWire(m.reason));
  else if (m.t === 'reply') {
    const settle = current.waiting.get(m.seq);
    current.waiting.delete(m.seq);
    settle?.(m);
  }
});
send({ t: 'ready' });
