// Every live (non-terminal) job, kept current by a KV watch on the jobs
// bucket: what the leader places and recovers from, without listing keys.
// The same watch serves the API's waits (`follow`): one consumer per node,
// however many clients wait (a watch per wait left its consumer on the server).
// A watch that cannot start (cut off, JetStream electing a leader) is retried:
// a blind index would stall the leader, and an unhandled rejection kills the process.
import { isTerminal } from '../machines/job.machine.ts';
import type { JobRecord } from '../api/contract.ts';
import { type Bucket, caughtUp } from '../store/bucket.ts';
import { decodeJob, type Versioned } from '../store/job.store.ts';
import { defaults } from '../base/defaults.ts';
import { keys } from '../store/keys.ts';
import { type Clock, realClock, sleep } from '../base/time.ts';
import type { Log } from './log.ts';

/** Which jobs a page lists: of a state, of a type, created since (wall ms); oldest first unless `newest`. */
export type PageFilter = { state?: JobRecord['state']; type?: string; since?: number; newest?: boolean };

export class JobIndex {
  readonly live = new Map<string, JobRecord>();
  /** The KV revision of each live record, so a writer can CAS on it without reading first. */
  readonly #revisions = new Map<string, number>();
  #listeners = new Set<() => void>();
  #recordListeners = new Set<(r: JobRecord) => void>();
  /**
   * Every stored job's state and creation time: how many are in each state (what `status` reports), and
   * `jobs.list`'s pages in (createdAt, id) order, without reading the records.
   */
  readonly #stored = new Map<string, { state: JobRecord['state']; createdAt: number; type: string }>();
  readonly counts: Record<JobRecord['state'], number> = { queued: 0, assigned: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
  /** Jobs that finished lately, oldest first (bounded): a wait for one is answered without a read. */
  readonly #finished = new Map<string, JobRecord>();
  /** Every stored finished job, in the order they finished: when, how long it is kept (null: the cluster's), its revision. */
  readonly #ended = new Map<string, { at: number; keepMs: number | null; revision: number }>();
  /** Per job id: who wants every stored version of that record (terminal ones too). */
  #followers = new Map<string, Set<(r: JobRecord) => void>>();
  /** Delete and purge markers the watch delivered, by key, oldest first (bounded): what the leader compacts. */
  readonly #markers = new Map<string, { revision: number; at: number }>();
  #stop: (() => void) | null = null;
  #stopped = false;
  #ready: Promise<void>;
  #markReady: () => void = () => {};

  constructor(kv: Bucket, options: { clock?: Clock; log?: Log } = {}) {
    this.#ready = new Promise((r) => (this.#markReady = r));
    void this.#follow(kv, options.clock ?? realClock, options.log ?? (() => {}));
  }

  /** The highest revision the watch delivered, and when (monotonic ms) it last delivered anything. */
  #seen = 0;
  #lastDelivery = 0;

  /**
   * A watch can stall without ending (seen once in the chaos suite: a node paused past two nats-server
   * kills kept a watch that delivered nothing for 40 s, and as leader it never requeued jobs it could not
   * see). So: when the watch has been silent for a while but the bucket has moved past what it
   * delivered, stop it; the loop watches again and gets every current value.
   */
  async #watchdog(kv: Bucket, clock: Clock, log: Log, stop: () => void, stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      await sleep(defaults.indexStallCheckMs, undefined, clock);
      if (stopped() || clock.mono() - this.#lastDelivery < defaults.indexStallCheckMs) continue;
      const last = await kv.lastRevision().catch(() => 0);
      if (!stopped() && last > this.#seen && clock.mono() - this.#lastDelivery >= defaults.indexStallCheckMs) {
        log(`job index: watch silent at revision ${this.#seen} while the bucket is at ${last}; watching again`);
        stop();
        return;
      }
    }
  }

  async #follow(kv: Bucket, clock: Clock, log: Log): Promise<void> {
    for (let delay: number = defaults.retryFirstMs; !this.#stopped; delay = Math.min(defaults.retryMaxMs, delay * 2)) {
      let ended = false;
      try {
        const iter = await kv.watch(keys.jobs);
        if (this.#stopped) return iter.stop();
        this.#stop = () => iter.stop();
        this.#lastDelivery = clock.mono();
        void this.#watchdog(kv, clock, log, () => iter.stop(), () => ended || this.#stopped);
        for await (const e of iter) {
          delay = defaults.retryFirstMs;
          this.#lastDelivery = clock.mono();
          if (e === caughtUp) {
            this.#markReady();
            continue;
          }
          this.#seen = Math.max(this.#seen, e.revision);
          const id = keys.jobIdOf(e.key);
          this.#markers.delete(e.key);
          if (e.operation !== 'PUT') {
            this.#markers.set(e.key, { revision: e.revision, at: clock.mono() });
            if (this.#markers.size > defaults.indexMarkersMax) this.#markers.delete(this.#markers.keys().next().value!);
            this.#forget(id);
            this.#count(id, null);
            continue;
          }
          let r: JobRecord;
          try {
            r = decodeJob(e.value, id);
          } catch {
            this.#forget(id); // unreadable records are not placed
            continue;
          }
          this.#see(r, e.revision);
        }
        if (this.#stopped) return;
        log(`job index: watch ended; watching again in ${delay} ms`);
      } catch (err) {
        if (this.#stopped) return;
        log(`job index: watch failed (${(err as Error).message}); retrying in ${delay} ms`);
      } finally {
        ended = true;
      }
      await sleep(delay, undefined, clock);
    }
  }

  /** A stored version of a record: the index holds it unless it holds a later one already. */
  #see(r: JobRecord, revision: number): void {
    const id = r.id;
    if ((this.#revisions.get(id) ?? 0) > revision) return;
    this.#count(id, r);
    // The revision is kept for finished records too (while they are remembered): an older version delivered late changes nothing.
    this.#revisions.set(id, revision);
    if (isTerminal(r)) {
      this.live.delete(id);
      this.#ended.delete(id);
      this.#ended.set(id, { at: r.updatedAt, keepMs: r.retentionMs ?? null, revision });
      this.#finished.set(id, r);
      if (this.#finished.size > defaults.indexFinishedMax) {
        const oldest = this.#finished.keys().next().value!;
        this.#finished.delete(oldest);
        if (!this.live.has(oldest)) this.#revisions.delete(oldest);
      }
    } else {
      this.#finished.delete(id);
      this.#ended.delete(id);
      this.live.set(id, r);
    }
    this.#followers.get(id)?.forEach((f) => f(r));
    this.#recordListeners.forEach((l) => l(r));
    this.#listeners.forEach((l) => l());
  }

  /** A version this node wrote itself: seen now rather than when the watch brings it back (then it changes nothing). */
  note(v: Versioned<JobRecord>): void {
    this.#see(v.value, v.revision);
  }

  /** A version of `id` arrived (null: deleted); a re-watch delivering it again changes nothing. */
  #count(id: string, r: JobRecord | null): void {
    const was = this.#stored.get(id);
    if (was) this.counts[was.state]--;
    if (r) {
      this.counts[r.state]++;
      this.#stored.set(id, { state: r.state, createdAt: r.createdAt, type: r.type });
    } else this.#stored.delete(id);
  }

  /** The record this index holds at `revision` is no longer stored (its deletion was not seen by the watch): forget it. */
  gone(id: string, revision: number): void {
    if (this.#revisions.get(id) !== revision) return; // the watch has delivered a newer version meanwhile
    this.#forget(id);
    this.#count(id, null);
  }

  #forget(id: string): void {
    this.live.delete(id);
    this.#finished.delete(id);
    this.#ended.delete(id);
    this.#revisions.delete(id);
  }

  /**
   * One page of stored job ids in (createdAt, id) order, after the job `after` names (its createdAt and id),
   * of jobs in `state` if given; `more`: whether any follow. From memory: the records are read only for the page.
   */
  page(filter: PageFilter, after: { createdAt: number; id: string } | null, limit: number) {
    const { state, type, since = 0, newest = false } = filter;
    const sign = newest ? -1 : 1;
    const order = (at: number, id: string, b: { createdAt: number; id: string }) =>
      sign * (at - b.createdAt || (id < b.id ? -1 : id > b.id ? 1 : 0));
    const ids: Array<[number, string]> = [];
    for (const [id, e] of this.#stored) {
      if (state && e.state !== state || type && e.type !== type || e.createdAt < since) continue;
      if (!after || order(e.createdAt, id, after) > 0) ids.push([e.createdAt, id]);
    }
    ids.sort((a, b) => order(a[0], a[1], { createdAt: b[0], id: b[1] }));
    return { ids: ids.slice(0, limit).map(([, id]) => id), more: ids.length > limit };
  }

  /** Markers seen at or before `before` (monotonic ms), oldest first, at most `max`: the keys and their revisions. */
  markers(before: number, max: number): Array<{ key: string; revision: number }> {
    const out: Array<{ key: string; revision: number }> = [];
    for (const [key, m] of this.#markers) {
      if (m.at > before || out.length >= max) break;
      out.push({ key, revision: m.revision });
    }
    return out;
  }

  /** A marker removed from the bucket (or found replaced): no longer to compact. */
  compacted(key: string, revision: number): void {
    if (this.#markers.get(key)?.revision === revision) this.#markers.delete(key);
  }

  /** Finished jobs past their retention at `now` (at most `max`, the longest finished first), with their revisions. */
  expired(now: number, retentionMs: number, max: number): Array<{ id: string; revision: number }> {
    const out: Array<{ id: string; revision: number }> = [];
    for (const [id, e] of this.#ended) {
      if (out.length >= max) break;
      if (e.at + (e.keepMs ?? retentionMs) <= now) out.push({ id, revision: e.revision });
    }
    return out;
  }

  /** Every record it holds: the live ones and the lately finished (at most `indexFinishedMax` of those). */
  *records(): Iterable<JobRecord> {
    yield* this.live.values();
    yield* this.#finished.values();
  }

  /** The record as the watch last delivered it, if live or finished lately (it may lag the bucket by a moment). */
  latest(id: string): JobRecord | undefined {
    return this.live.get(id) ?? this.#finished.get(id);
  }

  /** A live record with its revision, as the watch last delivered it. */
  versioned(id: string): Versioned<JobRecord> | undefined {
    const value = this.live.get(id);
    const revision = this.#revisions.get(id);
    return value && revision !== undefined ? { value, revision } : undefined;
  }

  /** Resolves once the initial values have been read. */
  ready(): Promise<void> {
    return this.#ready;
  }
  /**
   * Call `fn` with each version of job `id` the watch delivers from now on
   * (after a re-watch, the current one again); returns the unsubscribe.
   */
  follow(id: string, fn: (r: JobRecord) => void): () => void {
    const set = this.#followers.get(id) ?? new Set();
    this.#followers.set(id, set.add(fn));
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.#followers.get(id) === set) this.#followers.delete(id);
    };
  }
  /** Call `fn` with every version the index takes (from the watch, or noted); returns the unsubscribe. */
  onRecord(fn: (r: JobRecord) => void): () => void {
    this.#recordListeners.add(fn);
    return () => this.#recordListeners.delete(fn);
  }
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
  stop(): void {
    this.#stopped = true;
    this.#stop?.();
  }
}
