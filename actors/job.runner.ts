// Runs the jobs assigned to this node: start by CAS, claim the checkpoint,
// call the handler with its context, finish by CAS. Every write is fenced by
// the attempt; after lease loss the runner aborts its handlers and writes nothing.
import { type JobEvent, type JobRecord, lastAttempt } from '../machines/job.machine.ts';
import { type HandlerOutcome, outcomeEvent, type StopReason } from '../machines/job.rules.ts';
import type { Bucket } from '../streams/bucket.ts';
import { defaults, retryBackoffMs } from '../streams/defaults.ts';
import { CheckpointTooLargeError, CodecError, FencedError } from '../streams/errors.ts';
import { CheckpointSlot, type JobStore, type Versioned } from '../streams/job.store.ts';
import { type Clock, realClock, sleep } from '../streams/time.ts';
import { type Handler, type JobCtx, JobInputError } from './handlers.ts';
import type { Log } from './log.ts';

class Stop extends Error {
  readonly reason: StopReason;
  constructor(reason: StopReason, message: string) {
    super(message);
    this.name = 'Stop';
    this.reason = reason;
  }
}

type Running = {
  attempt: number;
  abort: AbortController;
  done: Promise<void>;
  /** The record as this runner last wrote it: the next write CASes on it without reading first. */
  known: Versioned<JobRecord> | undefined;
};

export type RunnerDeps = {
  store: JobStore;
  checkpoints: Bucket;
  nodeId: string;
  slots: number;
  /** Handlers' sleeps take 1/speed of the time asked (a node's speed factor: sleep-style work runs faster or slower). */
  speed?: number;
  handlers: Record<string, Handler>;
  log: Log;
  /** False once this node's lease may be gone: then nothing more is written. */
  mayWrite: () => boolean;
  /** The node lease's epoch (fencing token) now: recorded with each start, an attempt lives only as long as that lease term. */
  nodeEpoch?: () => number | null;
  /** Called after a checkpoint is committed, with its revision (for the history). */
  onCheckpoint?: (id: string, attempt: number, progress: number, revision: number, bytes: number, ms: number) => void;
  /** Called when an attempt's handler starts here (with the revision its checkpoint claim got), and when this node stops running it (for the history). */
  onHandler?: (id: string, attempt: number, phase: 'start' | 'end', claimed?: number) => void;
  /** Event times, progress throttling, timeouts and handlers' sleeps. */
  clock?: Clock;
};

export class JobRunner {
  readonly d: RunnerDeps;
  readonly #running = new Map<string, Running>();
  /** Assigned to us while every slot was busy (bids can cross): started as slots free up. */
  readonly #pending = new Set<string>();
  /**
   * Starts in progress. A second start of the same job meanwhile (a duplicate
   * assignment, the pending queue) must not claim the checkpoint again: that
   * would fence the attempt it is starting. It is noted and re-tried after.
   */
  readonly #starting = new Map<string, { again: boolean }>();
  #reserved = 0;

  readonly #clock: Clock;

  constructor(d: RunnerDeps) {
    this.d = d;
    this.#clock = d.clock ?? realClock;
  }

  get running(): number {
    return this.#running.size;
  }
  get free(): number {
    return Math.max(0, this.d.slots - this.#running.size - this.#reserved - this.#pending.size);
  }
  types(): string[] {
    return Object.keys(this.d.handlers).sort();
  }
  has(id: string): boolean {
    return this.#running.has(id);
  }

  /**
   * Start a job the leader assigned to us (idempotent; ignores anything not
   * ours). `known`: the record as the leader wrote it, so a first attempt
   * starts without reading it first.
   */
  async start(id: string, known?: Versioned<JobRecord>): Promise<void> {
    if (this.#running.has(id) || !this.d.mayWrite()) return;
    const inFlight = this.#starting.get(id);
    if (inFlight) {
      inFlight.again = true;
      return;
    }
    if (this.d.slots - this.#running.size - this.#reserved <= 0) {
      this.#pending.add(id);
      return;
    }
    this.#pending.delete(id);
    this.#reserved++;
    const flight = { again: false };
    this.#starting.set(id, flight);
    try {
      // A first attempt starts on the version the leader sent; a later one claims the checkpoint slot
      // first, so it reads the record fresh (never claiming on a stale assignment).
      const cur = known?.value.attempt === 1 ? known : await this.d.store.get(id);
      const r = cur?.value;
      if (!r || r.state !== 'assigned' || r.owner !== this.d.nodeId || !this.d.mayWrite()) return;
      const slot = await CheckpointSlot.claim(this.d.checkpoints, id, r.attempt);
      const resumedFrom = slot.restored?.progress ?? 0;
      const started = await this.write(id, () => ({
        type: 'job.start',
        node: this.d.nodeId,
        attempt: r.attempt,
        resumedFrom,
        at: this.#clock.now(),
        nodeEpoch: this.#epoch(),
      }), { retry: true, known: cur! });
      // Our start may have landed on an earlier try whose reply was lost: then the record already shows it.
      const ours = (x: JobRecord) =>
        x.state === 'running' && x.attempt === r.attempt && x.owner === this.d.nodeId &&
        (lastAttempt(x)?.nodeEpoch ?? null) === this.#epoch();
      if (!started || !(started.changed || ours(started.record))) return;
      // The attempt lives in the lease term it was started under. A start that landed late (sent before
      // our lease was lost, applied after) must not run under a later term: recovery requeues it.
      const term = lastAttempt(started.record)?.nodeEpoch ?? null;
      if (!this.#mayWrite(term)) {
        this.d.log(`job ${id}#${r.attempt}: its start landed after lease term ${term} ended; not running it (the leader requeues it)`);
        return;
      }
      const abort = new AbortController();
      const entry: Running = {
        attempt: r.attempt,
        abort,
        done: Promise.resolve(),
        known: { value: started.record, revision: started.revision },
      };
      this.#running.set(id, entry);
      entry.done = this.#execute(entry, started.record, slot, term).finally(() => {
        this.#running.delete(id);
        const next = this.#pending.values().next();
        if (!next.done) void this.start(next.value);
      });
    } catch (err) {
      this.d.log(`job ${id}: could not start: ${(err as Error).message}`);
    } finally {
      this.#reserved--;
      this.#starting.delete(id);
      // Another assignment came meanwhile (maybe a newer attempt): look again.
      if (flight.again && !this.#running.has(id)) void this.start(id);
    }
  }

  /** Abort one job (cancelled elsewhere, or handed back). */
  stop(id: string, reason: StopReason): void {
    this.#running.get(id)?.abort.abort(new Stop(reason, reason));
  }

  /** Lease lost: abort everything; the aborted handlers write nothing more. */
  abortAll(): void {
    this.#pending.clear();
    for (const r of this.#running.values()) r.abort.abort(new Stop('fenced', 'node lease lost'));
  }

  /** Drain: hand every running job back to the queue (after its handler stops) and wait. */
  async handBack(): Promise<void> {
    this.#pending.clear(); // still 'assigned': the leader requeues them after the start timeout
    for (const id of this.#running.keys()) this.stop(id, 'preempted');
    await Promise.allSettled([...this.#running.values()].map((r) => r.done));
  }

  #epoch(): number | null {
    return this.d.nodeEpoch?.() ?? null;
  }

  /** Our node lease is valid (and, given a term, it is still that lease term). */
  #mayWrite(term?: number | null): boolean {
    return this.d.mayWrite() && (term === undefined || this.#epoch() === term);
  }

  /**
   * Write by CAS (the store re-reads and re-decides on conflict). With `retry`,
   * a write that got no verdict (timeout, disconnected: it may or may not have
   * landed) is tried again while our lease holds; re-deciding on the fresh
   * record makes that safe. Without, it is best effort (progress, phase).
   */
  private async write(
    id: string,
    decide: (r: JobRecord) => JobEvent | null,
    o: { retry?: boolean; term?: number | null; known?: Versioned<JobRecord> } = {},
  ) {
    let known = o.known;
    for (let delay: number = defaults.jobWriteRetryMs;; delay = Math.min(defaults.jobWriteRetryMaxMs, 2 * delay)) {
      if (!this.#mayWrite(o.term)) return null;
      try {
        return await this.d.store.apply(id, (r) => (this.#mayWrite(o.term) ? decide(r) : null), known);
      } catch (err) {
        // An unreadable record stays unreadable; anything else (timeout, disconnected) may pass.
        if (!o.retry || err instanceof CodecError) throw err;
        known = undefined; // it may have landed: read before deciding again
        this.d.log(`job ${id}: write got no answer (${(err as Error).message}); trying again in ${delay} ms`);
        await sleep(delay, undefined, this.#clock);
      }
    }
  }

  /** A write by the running attempt: CAS on the version it last wrote, and remember the new one. */
  async #ownWrite(id: string, entry: Running, decide: (r: JobRecord) => JobEvent | null, o: { retry?: boolean; term: number | null }) {
    const done = await this.write(id, decide, { ...o, known: entry.known });
    if (done && done.revision > (entry.known?.revision ?? 0)) entry.known = { value: done.record, revision: done.revision };
    return done;
  }

  async #execute(entry: Running, job: JobRecord, slot: CheckpointSlot, term: number | null): Promise<void> {
    const { id, attempt } = job;
    const { abort } = entry;
    const handler = this.d.handlers[job.type];
    const clock = this.#clock;
    const timer = clock.setTimeout(() => abort.abort(new Stop('timeout', `timed out after ${job.timeoutMs} ms`)), job.timeoutMs);
    let lastProgressWrite = 0;
    const writeProgress = (p: number) => {
      const now = clock.now();
      if (now - lastProgressWrite < defaults.progressIntervalMs) return; // the result write sets 1 anyway
      lastProgressWrite = now;
      void this.#ownWrite(id, entry, () => ({ type: 'job.progress', attempt, progress: p, at: now }), { term }).catch(() => {});
    };
    const ctx: JobCtx = {
      restored: slot.restored?.state,
      signal: abort.signal,
      fence: { jobId: id, attempt, token: `${id}:${attempt}` },
      log: (msg) => this.d.log(`job ${id}#${attempt}: ${msg}`),
      progress: (p) => writeProgress(p),
      phase: (p) =>
        void this.#ownWrite(
          id,
          entry,
          () => ({ type: 'job.phase', attempt, phase: p === 'io' ? 'ioWait' : 'computing', at: clock.now() }),
          {
            term,
          },
        ).catch(() => {}),
      sleep: (ms) => sleep(ms / (this.d.speed ?? 1), abort.signal, clock),
      checkpoint: async (state, progress) => {
        if (abort.signal.aborted) throw abort.signal.reason;
        if (!this.#mayWrite(term)) throw new FencedError('node lease lost');
        const began = clock.mono();
        const bytes = await slot.save(state, progress);
        this.d.onCheckpoint?.(id, attempt, progress, slot.revision, bytes, clock.mono() - began);
        writeProgress(progress);
      },
    };
    let outcome: HandlerOutcome;
    this.d.onHandler?.(id, attempt, 'start', slot.claimed ? slot.revision : undefined);
    try {
      if (!handler) throw new JobInputError(`unknown job type '${job.type}' (this node handles: ${this.types().join(', ')})`);
      const result = await Promise.race([
        handler(job.input, ctx),
        // A handler that ignores its signal still loses its slot when aborted.
        new Promise<never>((_, rej) => abort.signal.addEventListener('abort', () => rej(abort.signal.reason), { once: true })),
      ]);
      outcome = { ok: true, result: result ?? null };
    } catch (err) {
      // Bad input and oversize checkpoints fail the same way every time: no retry.
      const retryable = !(err instanceof JobInputError || err instanceof CheckpointTooLargeError);
      outcome = { ok: false, error: (err as Error)?.message ?? String(err), retryable, fenced: err instanceof FencedError };
    } finally {
      clock.clearTimeout(timer);
      this.d.onHandler?.(id, attempt, 'end');
    }

    const stop = abort.signal.aborted ? (abort.signal.reason as Stop).reason : null;
    const event = outcomeEvent(attempt, stop, outcome, retryBackoffMs(job.failures + 1), clock.now());
    if (!event) return; // fenced or cancelled: nothing more to write
    try {
      const done = await this.#ownWrite(id, entry, () => event, { retry: true, term });
      // A success is routine (`shoal events` has it); anything else is worth a line.
      if (done?.changed && event.type !== 'job.succeed') {
        this.d.log(`job ${id}#${attempt}: ${event.type.slice(4)}${event.type === 'job.fail' ? ` (${event.error})` : ''}`);
      } else {this.d.log(
          `job ${id}#${attempt}: ${event.type.slice(4)} refused (fenced: ${
            done ? `the record is ${done.record.state}, attempt ${done.record.attempt}` : 'lease lost'
          })`,
        );}
    } catch (err) {
      this.d.log(`job ${id}#${attempt}: could not record ${event.type}: ${(err as Error).message}`);
    }
  }
}
