// What the node's thread and a handler thread say to each other
// (node/handler.pool.ts, node/handler.worker.ts), and errors across the gap:
// the kinds the runner tells apart (bad input, oversize checkpoint, fenced, non-retryable)
// keep their class on the other side; anything else keeps name and message.
import { CheckpointTooLargeError, FencedError, JobCancelledError, NonRetryableError } from '../base/errors.ts';
import { JobInputError } from './handlers.ts';

export type WireError = { name: string; message: string; code?: string };

export type ToWorker =
  | { t: 'run'; call: number; type: string; input: unknown; restored: unknown; fence: { jobId: string; attempt: number; token: string } }
  | { t: 'abort'; call: number; reason: WireError }
  | { t: 'reply'; call: number; seq: number; error?: WireError };

export type ToNode =
  | { t: 'ready' }
  | { t: 'ask'; call: number; seq: number; op: 'checkpoint' | 'phase' | 'sleep'; args: unknown[] }
  | { t: 'progress'; call: number; p: number }
  | { t: 'log'; call: number; msg: string }
  | { t: 'done'; call: number; ok: true; result: unknown }
  | { t: 'done'; call: number; ok: false; error: WireError };

const kinds: Record<string, { prototype: Error }> = {
  JobInputError,
  CheckpointTooLargeError,
  FencedError,
  JobCancelledError,
  NonRetryableError,
};

export function errorToWire(err: unknown): WireError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

export function errorFromWire(w: WireError): Error {
  const err = new Error(w.message);
  const kind = kinds[w.name];
  if (kind) Object.setPrototypeOf(err, kind.prototype);
  return Object.assign(err, { name: w.name }, w.code ? { code: w.code } : {});
}
