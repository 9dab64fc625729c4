// Runs the jobs assigned to this node: start by CAS, claim the checkpoint,
// call the handler with its context, finish by CAS. Every write is fenced by
// the attempt; after lease loss the runner aborts its handlers and writes nothing.
import type { CapacityConfig } from './config.ts';
import { type JobEvent, lastAttempt } from '../machines/job.machine.ts';
import type { JobRecord, TypeSettings } from '../api/contract.ts';
import { outcomeEvent } from '../machines/job.rules.ts';
import type { Bucket } from '../store/bucket.ts';
import { defaults, retryBackoffMs } from '../base/defaults.ts';
import { CodecError, FencedError } from '../base/errors.ts';
import { CheckpointSlot, type Decision, type JobStore, type Versioned } from '../store/job.store.ts';
import { type Clock, realClock, sleep } from '../base/time.ts';
import type { Handler } from './handlers.ts';
import { attemptSpan } from './tracing.ts';
import type { Log } from './log.ts';
import { Slots } from './slots.ts';
import { attemptContext, callHandler, type Running, Stop } from './job.context.ts';
import { usageOf } from '../policies/requirements.ts';
import type { HandlerFacts, HandlerPhase } from '../nats/events.ts';

export type RunnerDeps = {
  store: JobStore;
  checkpoints: Bucket;
  nodeId: string;
  /** Compute slots, the I/O limit beside them, and the memory (null: no limit) and GPUs held by the jobs that require them. */
  capacity: Pick<CapacityConfig, 'slots' | 'ioSlots' | 'memMb' | 'gpu'>;
  /** How long a preempted or drained job may still checkpoint before its attempt ends anyway (the preemption rules' grace). */
  graceMs: number;
  /** Handlers' sleeps take 1/speed of the time asked (a node's speed factor: sleep-style work runs faster or slower). */
  speed: number;
  handlers: Record<string, Handler>;
  settings?: Record<string, TypeSettings>; // job types' settings (`defineJob`): their retry backoff
  log: Log;
  /** False once this node's lease may be gone: then nothing more is written. */
  mayWrite: () => boolean;
  /** The node lease's epoch (fencing token) now: recorded with each start, an attempt lives only as long as that lease term. */
  nodeEpoch?: () => number | null;
  /** Called after a checkpoint is committed, with its revision (for the history). */
  onCheckpoint?: (id: string, attempt: number, progress: number, revision: number, bytes: number, ms: number) => void;
  /** False while this node is cut off from NATS: no handler starts then (one may not get to write, and its term may be reaped). */
  linked?: () => boolean;
  /** Each attempt's handler as it starts, changes phase, yields its slot and ends here (for the history). */
  onHandler?: (id: string, attempt: number, phase: HandlerPhase, facts?: HandlerFacts) => void;
  /** Event times, progress throttling, timeouts and handlers' sleeps. */
  clock?: Clock;
};

export class JobRunner {
  readonly deps: RunnerDeps;
  readonly #running = new Map<string, Running>();
  /**
   * Assigned to us while every slot was busy (bids can cross), or while the
   * memory or GPUs it requires were held: started as they free up, in order.
   * `resources`: it waits for memory or GPUs (tried again only when some are released).
   */
  readonly #pending = new Map<string, { known?: Versioned<JobRecord>; resources: boolean }>();
  readonly #slots: Slots;
  /** A preemption in progress: the slots it frees go to its jobs, not to what waited before. */
  #handingOver = false;
  /**
   * Starts in progress. A second start of the same job meanwhile (a duplicate
   * assignment, the pending queue) must not claim the checkpoint again: that
   * would fence the attempt it is starting. It is noted and re-tried after.
   */
  readonly #starting = new Map<string, { again: boolean }>();
  readonly #clock: Clock;
  /** Starts that failed for want of an answer, by job: the next try waits longer. */
  readonly #startTries = new Map<string, number>();
  /** The last attempt of each job this node ran (lately, bounded): an assignment sent again is not run twice. */
  readonly #ran = new Map<string, number>();

  constructor(deps: RunnerDeps) {
    this.deps = deps;
    this.#clock = deps.clock ?? realClock;
    const { slots, ioSlots, memMb, gpu } = deps.capacity;
    this.#slots = new Slots({ slots, ioSlots, memMb: memMb ?? Infinity, gpu });
    this.#slots.onFree = (resources) => this.#startPending(resources);
  }

  get running(): number {
    return this.#running.size;
  }
  /** Compute slots a new job could take (what a bid offers). */
  get free(): number {
    return Math.max(0, this.#slots.computeFree - this.#pending.size);
  }
  /** Memory and GPUs no running job holds. */
  get freeUsage() {
    return this.#slots.freeUsage;
  }
  types(): string[] {
    return Object.keys(this.deps.handlers).sort();
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
    // An attempt this node already ran (an assignment sent again): never twice.
    if (known && known.value.attempt <= (this.#ran.get(id) ?? 0)) return;
    const current = this.#running.get(id);
    if (current) {
      // A newer attempt assigned while the old one is still handing back: start it once that one is gone.
      if (known && known.value.attempt > current.attempt) void current.done.then(() => this.start(id, known));
      return;
    }
    if (!this.deps.mayWrite()) return;
    if (!(this.deps.linked?.() ?? true)) {
      this.#pending.set(id, { known: known ?? this.#pending.get(id)?.known, resources: false });
      return;
    }
    const inFlight = this.#starting.get(id);
    if (inFlight) {
      inFlight.again = true;
      return;
    }
    if (!this.#slots.reserve()) {
      this.#pending.set(id, { known: known ?? this.#pending.get(id)?.known, resources: false });
      return;
    }
    this.#pending.delete(id);
    const flight = { again: false };
    this.#starting.set(id, flight);
    let usage = usageOf(null);
    let held = false;
    let retrying = false;
    try {
      // A first attempt starts on the version the leader sent; a later one claims the checkpoint slot
      // first, so it reads the record fresh (never claiming on a stale assignment).
      const cur = known?.value.attempt === 1 ? known : await this.deps.store.get(id);
      const r = cur?.value;
      if (!r || r.state !== 'assigned' || r.owner !== this.deps.nodeId || !this.deps.mayWrite()) return;
      if (!this.#slots.reserveUsage(usageOf(r.requires))) {
        this.#pending.set(id, { known: cur!, resources: true }); // its memory or GPUs are held: once some are released
        return;
      }
      usage = usageOf(r.requires); // reserved: given back in `finally` unless the job runs
      // The attempt lives in one lease term of ours: the one its assignment named, else the one we hold now.
      // An assignment that names another term (we were fenced and re-joined since) is not ours to run:
      // recovery requeues it.
      const named = lastAttempt(r)?.nodeEpoch;
      const term = typeof named === 'number' ? named : (this.deps.nodeEpoch?.() ?? null);
      if (!this.#mayWrite(term)) {
        this.deps.log(`job ${id}#${r.attempt}: assigned in lease term ${named}, not ours now; not running it (the leader requeues it)`);
        return;
      }
      const slot = await CheckpointSlot.claim(this.deps.checkpoints, id, r.attempt);
      if (!this.#mayWrite(term)) return;
      if (!(this.deps.linked?.() ?? true)) {
        this.#pending.set(id, { known: cur!, resources: false }); // started once the link is back
        return;
      }
      // No write before the handler: its start rides on the attempt's first write of its own (progress, a
      // phase, its result), or is written alone once the handler has run `startWriteDelayMs`.
      const startEvent: JobEvent = {
        type: 'job.start',
        node: this.deps.nodeId,
        attempt: r.attempt,
        resumedFrom: slot.restored?.progress ?? 0,
        at: this.#clock.now(),
        nodeEpoch: term,
      };
      const entry: Running = {
        attempt: r.attempt,
        abort: new AbortController(),
        done: Promise.resolve(),
        yielding: false,
        graceUntil: 0,
        known: cur!,
        startEvent,
      };
      this.#slots.hold(id, usage);
      held = true;
      this.#running.set(id, entry);
      const facts = { term, assigned: cur!.revision, slots: this.deps.capacity.slots, ioSlots: this.deps.capacity.ioSlots };
      entry.done = this.#execute(entry, r, slot, facts).finally(() => {
        this.#running.delete(id);
        this.#slots.release(id);
        this.#ran.set(id, entry.attempt);
        if (this.#ran.size > defaults.indexFinishedMax) this.#ran.delete(this.#ran.keys().next().value!);
      });
    } catch (err) {
      // A read or claim that got no answer: the job is still ours to start (while our lease term lives, nobody
      // else moves it), so try again, backing off; a fenced claim is final (a newer attempt owns the job).
      const again = !(err instanceof FencedError || err instanceof CodecError) && this.deps.mayWrite();
      const delay = Math.min(defaults.jobWriteRetryMaxMs, defaults.jobWriteRetryMs * 2 ** (this.#startTries.get(id) ?? 0));
      this.deps.log(`job ${id}: could not start: ${(err as Error).message}${again ? `; trying again in ${delay} ms` : ''}`);
      if (again) {
        retrying = true;
        this.#startTries.set(id, (this.#startTries.get(id) ?? 0) + 1);
        this.#clock.setTimeout(() => void this.start(id, known), delay);
      }
    } finally {
      if (!retrying) this.#startTries.delete(id);
      if (!held) this.#slots.unreserve(usage);
      this.#starting.delete(id);
      // Another assignment came meanwhile (maybe a newer attempt): look again.
      if (flight.again && !this.#running.has(id)) void this.start(id);
    }
  }

  /** Start what waits, highest priority first (then in order), while slots (and, when `resources`, memory or GPUs) may allow. */
  #startPending(resources: boolean): void {
    if (this.#handingOver) return;
    const priority = (p: { known?: Versioned<JobRecord> }) => p.known?.value.priority ?? 0;
    const waiting = [...this.#pending].map((e, i) => ({ e, i })).sort((a, b) => priority(b.e[1]) - priority(a.e[1]) || a.i - b.i);
    for (const { e: [id, p] } of waiting) {
      if (this.#slots.computeFree <= 0) return;
      if (p.resources && !resources) continue;
      this.#pending.delete(id);
      void this.start(id, p.known);
    }
  }

  /** Abort one job (cancelled elsewhere). */
  stop(id: string, reason: 'cancelled'): void {
    this.#pending.delete(id); // assigned, not started yet: it never will be
    this.#running.get(id)?.abort.abort(new Stop(reason, reason));
  }

  /**
   * Preemption: these attempts give their slots, memory and GPUs back at once
   * (a job assigned to us for them starts now) and their handlers see the
   * abort; each may still checkpoint for `graceMs`, then its attempt ends as
   * `preempted` whether its handler returned or not.
   */
  yieldJobs(
    jobs: Array<{ id: string; attempt: number }>,
    graceMs = this.deps.graceMs,
    why = 'preempted for a higher-priority job',
  ): void {
    for (const { id, attempt } of jobs) {
      const entry = this.#running.get(id);
      if (!entry || entry.attempt !== attempt || entry.yielding) continue;
      entry.yielding = true;
      entry.graceUntil = this.#clock.mono() + graceMs;
      this.#slots.release(id);
      this.deps.onHandler?.(id, attempt, 'yield');
      entry.abort.abort(new Stop('preempted', `${why}: checkpoint within ${graceMs} ms`));
    }
  }

  /** A preemption: yield `victims` and start `jobs` in the slots they free (each start takes its slot before anything that waited here may). */
  handOver(victims: Array<{ id: string; attempt: number }>, jobs: Array<Versioned<JobRecord>>, graceMs?: number): void {
    this.#handingOver = true;
    try {
      this.yieldJobs(victims, graceMs);
      for (const j of jobs) void this.start(j.value.id, j);
    } finally {
      this.#handingOver = false;
    }
    this.#startPending(true);
  }

  /** Cut off from NATS a while: stop every handler; each hands its attempt back once it can write (if its term lives). */
  cutOff(): void {
    for (const r of this.#running.values()) {
      if (!r.yielding) r.abort.abort(new Stop('cut-off', 'cut off from NATS: handing the attempt back'));
    }
  }

  /** The link is back: start what was assigned meanwhile. */
  relinked(): void {
    this.#startPending(true);
  }

  /** Lease lost: abort everything; the aborted handlers write nothing more. */
  abortAll(): void {
    this.#pending.clear();
    for (const r of this.#running.values()) r.abort.abort(new Stop('fenced', 'node lease lost'));
  }

  /** Drain: hand every running job back to the queue (each may checkpoint within the grace) and wait. */
  async handBack(): Promise<void> {
    // Assigned to us but not started: back to the queue now (while our lease term lives, only we may move them).
    const waiting = [...this.#pending].map(([id, p]) =>
      this.#write(
        id,
        (r) => (r.state === 'assigned' && r.owner === this.deps.nodeId
          ? { type: 'job.unstarted', attempt: r.attempt, at: this.#clock.now() }
          : null),
        { retry: true, known: p.known },
      ).catch(() =>
        null
      )
    );
    this.#pending.clear();
    this.yieldJobs([...this.#running].map(([id, r]) => ({ id, attempt: r.attempt })), undefined, 'the node is draining');
    await Promise.allSettled([...waiting, ...[...this.#running.values()].map((r) => r.done)]);
  }

  /** Our node lease is valid (and, given a term, it is still that lease term). */
  #mayWrite(term?: number | null): boolean {
    return this.deps.mayWrite() && (term === undefined || (this.deps.nodeEpoch?.() ?? null) === term);
  }

  /**
   * Write by CAS (the store re-reads and re-decides on conflict). With `retry`,
   * a write that got no verdict (timeout, disconnected: it may or may not have
   * landed) is tried again while our lease holds; re-deciding on the fresh
   * record makes that safe. Without, it is best effort (progress, phase).
   */
  async #write(
    id: string,
    decide: (r: JobRecord) => Decision,
    options: { retry?: boolean; term?: number | null; known?: Versioned<JobRecord> } = {},
  ) {
    let known = options.known;
    for (let delay: number = defaults.jobWriteRetryMs;; delay = Math.min(defaults.jobWriteRetryMaxMs, 2 * delay)) {
      if (!this.#mayWrite(options.term)) return null;
      try {
        return await this.deps.store.apply(id, (r) => (this.#mayWrite(options.term) ? decide(r) : null), known);
      } catch (err) {
        // An unreadable record stays unreadable; anything else (timeout, disconnected) may pass.
        if (!options.retry || err instanceof CodecError) throw err;
        known = undefined; // it may have landed: read before deciding again
        this.deps.log(`job ${id}: write got no answer (${(err as Error).message}); trying again in ${delay} ms`);
        await sleep(delay, undefined, this.#clock);
      }
    }
  }

  /**
   * A write by the running attempt: CAS on the version it last wrote, and remember the new one. While the
   * record still shows the attempt only assigned, the write starts it too (one write, one revision).
   */
  async #ownWrite(
    id: string,
    entry: Running,
    decide: (r: JobRecord) => Decision,
    options: { retry?: boolean; term: number | null },
  ) {
    const withStart = (r: JobRecord): Decision => {
      const d = decide(r);
      if (d === null || r.state !== 'assigned' || r.attempt !== entry.attempt) return d;
      return [entry.startEvent, ...(Array.isArray(d) ? d : [d])];
    };
    const done = await this.#write(id, withStart, { ...options, known: entry.known });
    if (done && done.revision > (entry.known?.revision ?? 0)) entry.known = { value: done.record, revision: done.revision };
    return done;
  }

  async #execute(entry: Running, job: JobRecord, slot: CheckpointSlot, facts: HandlerFacts): Promise<void> {
    const [{ term }, { id, attempt }, { abort }, clock] = [facts, job, entry, this.#clock];
    const handler = this.deps.handlers[job.type];
    const timer = clock.setTimeout(() => abort.abort(new Stop('timeout', `timed out after ${job.timeoutMs} ms`)), job.timeoutMs);
    // A handler still running after a moment gets its start written alone (a short one's rides on its result).
    const startTimer = clock.setTimeout(
      () => void this.#ownWrite(id, entry, () => [], { retry: true, term }).catch(() => {}),
      defaults.startWriteDelayMs,
    );
    const ctx = attemptContext({
      id,
      attempt,
      entry,
      slot,
      clock,
      speed: this.deps.speed,
      log: this.deps.log,
      slots: this.#slots,
      mayWrite: () => this.#mayWrite(term),
      write: (decide) => void this.#ownWrite(id, entry, decide, { term }).catch(() => {}),
      onCheckpoint: this.deps.onCheckpoint,
      onPhase: (phase) => this.deps.onHandler?.(id, attempt, phase),
    });
    this.deps.onHandler?.(id, attempt, 'start', { ...facts, ...(slot.claimed ? { claimed: slot.revision } : {}) });
    const call = () => callHandler(handler, job, ctx, entry, clock, this.types());
    const outcome = await attemptSpan(job, attempt, this.deps.nodeId, call).finally(() => {
      clock.clearTimeout(timer);
      clock.clearTimeout(startTimer);
      this.deps.onHandler?.(id, attempt, 'end');
    });

    const stop = abort.signal.aborted ? (abort.signal.reason as Stop).reason : null;
    const backoff = retryBackoffMs(job.failures + 1, this.deps.settings?.[job.type]?.retry);
    const event = outcomeEvent(attempt, stop, outcome, backoff, clock.now());
    if (!event) return; // fenced or cancelled: nothing more to write
    try {
      const done = await this.#ownWrite(id, entry, () => event, { retry: true, term });
      if (!done?.changed) {
        const why = done ? `the record is ${done.record.state}, attempt ${done.record.attempt}` : 'lease lost';
        this.deps.log(`job ${id}#${attempt}: ${event.type.slice(4)} refused (fenced: ${why})`);
      } else if (event.type !== 'job.succeed') {
        // A success is routine (`shoal events` has it); anything else is worth a line.
        this.deps.log(`job ${id}#${attempt}: ${event.type.slice(4)}${event.type === 'job.fail' ? ` (${event.error})` : ''}`);
      }
    } catch (err) {
      this.deps.log(`job ${id}#${attempt}: could not record ${event.type}: ${(err as Error).message}`);
    }
  }
}
