// What a handler gets for one attempt (`ctx`): its restored checkpoint, its
// signal, progress, phases, sleeps and checkpoints. Every write is the running
// attempt's own (the runner's `write`), made only while its lease term lives.
import type { JobEvent } from '../machines/job.machine.ts';
import type { HandlerOutcome, StopReason } from '../machines/job.rules.ts';
import type { JobRecord } from '../api/contract.ts';
import { defaults } from '../base/defaults.ts';
import { CheckpointTooLargeError, FencedError, JobCancelledError, NonRetryableError } from '../base/errors.ts';
import type { CheckpointSlot, Decision, Versioned } from '../store/job.store.ts';
import { type Clock, sleep } from '../base/time.ts';
import { type Handler, type JobCtx, JobInputError } from './handlers.ts';
import type { Log } from './log.ts';
import { encode } from '../store/codec.ts';
import type { Slots } from './slots.ts';

/** Why a running attempt's handler was stopped (its signal's reason). */
export class Stop extends Error {
  readonly reason: StopReason;
  constructor(reason: StopReason, message: string) {
    super(message);
    this.name = 'Stop';
    this.reason = reason;
  }
}

/** An attempt this node runs now. */
export type Running = {
  attempt: number;
  abort: AbortController;
  done: Promise<void>;
  /** Handed back (preempted, draining): its slot is someone else's already; it may checkpoint until `graceUntil` (monotonic ms). */
  yielding: boolean;
  graceUntil: number;
  /** The record as this runner last wrote it (first: as assigned): the next write CASes on it without reading first. */
  known: Versioned<JobRecord> | undefined;
  /** The attempt's start, written with its first write of its own (while the record still says `assigned`). */
  startEvent: JobEvent;
};

export type AttemptDeps = {
  id: string;
  attempt: number;
  /** The running attempt: its abort, and whether it yields (preempted, draining) until `graceUntil` (monotonic ms). */
  entry: { abort: AbortController; yielding: boolean; graceUntil: number };
  slot: CheckpointSlot;
  clock: Clock;
  speed: number;
  log: Log;
  slots: Pick<Slots, 'toIo' | 'toCompute'>;
  /** The attempt's lease term lives: it may still write. */
  mayWrite: () => boolean;
  /** A write of the attempt's own, best effort (progress, phase). */
  write: (decide: (r: JobRecord) => Decision) => void;
  onCheckpoint?: (id: string, attempt: number, progress: number, revision: number, bytes: number, ms: number) => void;
  /** The handler gave its compute slot back for I/O, or holds one again. */
  onPhase?: (phase: 'io' | 'compute') => void;
};

export function attemptContext(deps: AttemptDeps): JobCtx {
  const { id, attempt, entry, slot, clock } = deps;
  const { abort } = entry;
  let lastProgressWrite = 0;
  const writeProgress = (p: number, checkpoint = false) => {
    const now = clock.now();
    if (now - lastProgressWrite < defaults.progressIntervalMs) return; // the result write sets 1 anyway
    lastProgressWrite = now;
    deps.write(() => ({ type: 'job.progress', attempt, progress: p, at: now, checkpoint }) satisfies JobEvent);
  };
  const writePhase = (phase: 'ioWait' | 'computing') => deps.write(() => ({ type: 'job.phase', attempt, phase, at: clock.now() }));
  /** Preempted (or draining) and within its grace: it may still checkpoint. */
  const inGrace = () => entry.yielding && clock.mono() < entry.graceUntil;
  return {
    restored: slot.restored?.state,
    signal: abort.signal,
    fence: { jobId: id, attempt, token: `${id}:${attempt}` },
    log: (msg) => deps.log(`job ${id}#${attempt}: ${msg}`),
    progress: (p) => writeProgress(p),
    phase: async (p) => {
      if (abort.signal.aborted) return;
      if (p === 'io') {
        if (deps.slots.toIo(id)) deps.onPhase?.('io');
        writePhase('ioWait');
      } else {
        if (await deps.slots.toCompute(id, abort.signal)) deps.onPhase?.('compute');
        writePhase('computing');
      }
    },
    sleep: (ms) => sleep(ms / deps.speed, abort.signal, clock),
    checkpoint: async (state, progress) => {
      if (entry.yielding && !inGrace()) throw new FencedError('preempted: past its checkpoint deadline');
      if (abort.signal.aborted && !inGrace()) throw abort.signal.reason;
      if (!deps.mayWrite()) throw new FencedError('node lease lost');
      const began = clock.mono();
      const bytes = await slot.save(state, progress);
      deps.onCheckpoint?.(id, attempt, progress, slot.revision, bytes, clock.mono() - began);
      writeProgress(progress, true);
    },
  };
}

/** A result the record can hold, or a failure that says why not (the same every time: not retried). */
function resultOutcome(result: unknown): HandlerOutcome {
  let bytes: number;
  try {
    bytes = encode(result).length;
  } catch (err) {
    return { ok: false, error: `the handler's result cannot be encoded: ${(err as Error).message}`, retryable: false, fenced: false };
  }
  if (bytes <= defaults.resultMaxBytes) return { ok: true, result };
  const error = `the handler's result is ${bytes} bytes encoded; the limit is ${defaults.resultMaxBytes} ` +
    '(store big results elsewhere and return a reference)';
  return { ok: false, error, retryable: false, fenced: false };
}

/**
 * Call an attempt's handler and say how it ended. A handler that ignores its signal still loses its slot when
 * aborted; a yielding one (preempted, drained) only once its grace is over.
 */
export async function callHandler(
  handler: Handler | undefined,
  job: JobRecord,
  ctx: JobCtx,
  entry: Pick<Running, 'abort' | 'yielding' | 'graceUntil'>,
  clock: Clock,
  types: string[],
): Promise<HandlerOutcome> {
  const { signal } = entry.abort;
  let graceTimer: unknown;
  let running: Promise<unknown> = Promise.resolve();
  try {
    if (!handler) throw new JobInputError(`unknown job type '${job.type}' (this node handles: ${types.join(', ')})`);
    running = handler(job.input, ctx, { graceLeftMs: () => entry.yielding ? Math.max(0, entry.graceUntil - clock.mono()) : 0 });
    const result = await Promise.race([
      running,
      new Promise<never>((_, rej) =>
        signal.addEventListener('abort', () => {
          if (!entry.yielding) return rej(signal.reason);
          graceTimer = clock.setTimeout(() => rej(signal.reason), Math.max(0, entry.graceUntil - clock.mono()));
        }, { once: true })
      ),
    ]);
    return resultOutcome(result ?? null);
  } catch (err) {
    // Bad input and oversize checkpoints fail the same way every time, and the handler may say so itself: no retry.
    const retryable = !(err instanceof JobInputError || err instanceof CheckpointTooLargeError || isNonRetryable(err));
    const error = String((err as Error)?.message ?? err).slice(0, defaults.errorMaxChars);
    return { ok: false, error, retryable, fenced: err instanceof FencedError, cancelled: err instanceof JobCancelledError };
  } finally {
    if (graceTimer !== undefined) clock.clearTimeout(graceTimer);
    await handlerStopped(running, signal, clock);
  }
}

/**
 * An aborted handler (timeout, cancel, lease lost, preemption past its grace) is not waited for to decide
 * its attempt's outcome, but its slot and its job stay held until it has stopped: its thread is terminated
 * `handlerStopMs` after the abort, so another attempt (here or elsewhere) does not overlap it. Bounded, for
 * a handler on the node's own thread that ignores its signal.
 */
async function handlerStopped(running: Promise<unknown>, signal: AbortSignal, clock: Clock): Promise<void> {
  if (!signal.aborted) return;
  let bound: unknown;
  await Promise.race([
    running.then(() => {}, () => {}),
    new Promise<void>((resolve) => (bound = clock.setTimeout(resolve, defaults.handlerStopMs + 200))),
  ]);
  clock.clearTimeout(bound);
}

/** The class, or its name (a handler thread's error, or the class from another copy of the package). */
function isNonRetryable(err: unknown): boolean {
  return err instanceof NonRetryableError || (err as Error | null)?.name === 'NonRetryableError';
}
