// Job records and checkpoints in KV. The one write path for a record is
// `apply`: read, let the job machine decide, CAS-write, re-decide on conflict.
// Checkpoints are fenced by attempt: a new owner claims the key by CAS first.
import { z } from 'zod';
import { applyJobEvent, type JobEvent } from '../machines/job.machine.ts';
import type { JobRecord } from '../api/contract.ts';
import { jobRecordSchema } from '../api/contract.ts';
import { decode, decodeRaw, encode } from './codec.ts';
import { defaults } from '../base/defaults.ts';
import { CheckpointTooLargeError, FencedError, JobCancelledError } from '../base/errors.ts';
import { type Bucket, isCasConflict, isStorageFull } from './bucket.ts';
import { keys } from './keys.ts';

export type Versioned<T> = { value: T; revision: number };

/** Fields a record has had since the first release, and those added later (read with their neutral values from older records). */
const lateFields = [
  'requires',
  'pendingTimeoutMs',
  'pendingReason',
  'pendingSince',
  'preemptions',
  'preemptedAt',
  'checkpointedAt',
  'orphans',
  'retentionMs',
] as const;

/**
 * A record as the jobs bucket holds it. Only Shoal writes that bucket (its roles let no client), so a record
 * of the current shape is taken as it is; the full schema check (and the defaults of fields added later)
 * runs only for one that looks otherwise: an older record, or damage.
 */
export function decodeJob(bytes: Uint8Array, id = '?'): JobRecord {
  const what = `job record '${id}'`;
  const raw = decodeRaw(bytes, what) as Partial<JobRecord> | null;
  const current = typeof raw === 'object' && raw !== null && typeof raw.id === 'string' && typeof raw.state === 'string' &&
    Array.isArray(raw.attempts) && lateFields.every((k) => k in raw);
  return current ? raw as JobRecord : decode(jobRecordSchema, bytes, what);
}

/**
 * Told of every record this store wrote (after the CAS succeeded), with the
 * revision it got and the one it replaced (0 for a create): two writes that
 * replaced one revision mean compare-and-swap let a lost update through.
 * `event` is what the write did last; `before` the events one write applied
 * ahead of it (a start carried by an attempt's first write of its own).
 */
export type JobChange = (
  prev: JobRecord | null,
  next: JobRecord,
  event: JobEvent | { type: 'job.submit' },
  revision: number,
  replaced: number,
  before?: JobEvent[],
) => void;

/** What a writer decides for a record: one event, several applied in order by one write (all or none), or nothing. */
export type Decision = JobEvent | JobEvent[] | null;

/** Apply a decision: the record after every event, or null when the machine refuses any of them. */
export function applyDecision(r: JobRecord, decision: Decision): { next: JobRecord; events: JobEvent[] } | null {
  const events = decision === null ? [] : Array.isArray(decision) ? decision : [decision];
  if (events.length === 0) return null;
  let next: JobRecord | null = r;
  for (const e of events) {
    next = applyJobEvent(next, e);
    if (!next) return null;
  }
  return { next, events };
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

export class JobStore {
  readonly kv: Bucket;
  readonly onChange: JobChange;
  constructor(kv: Bucket, onChange: JobChange = () => {}) {
    this.kv = kv;
    this.onChange = onChange;
  }

  async get(id: string): Promise<Versioned<JobRecord> | null> {
    const e = await this.kv.get(keys.job(id));
    if (!e) return null;
    return { value: decodeJob(e.value, id), revision: e.revision };
  }

  /**
   * Create (`events`: what the new record already went through, e.g. its assignment); when the id exists, returns
   * the existing record instead. A create that got no verdict (timeout, disconnected) reads the key: finding
   * exactly the bytes it wrote, its write landed (created, and told to `onChange`, so the creation is in the
   * history); finding nothing, it tries again (up to `createTries` in all), instead of failing a submit for a
   * lost reply.
   */
  async create(record: JobRecord, events: JobEvent[] = []): Promise<{ created: boolean; record: JobRecord; revision: number }> {
    const key = keys.job(record.id);
    const data = encode(record);
    const created = (revision: number) => {
      this.onChange(null, record, { type: 'job.submit' }, revision, 0, events);
      return { created: true, record, revision };
    };
    for (let tries = 1;; tries++) {
      try {
        return created(await this.kv.create(key, data));
      } catch (err) {
        const verdict = isCasConflict(err);
        if (isStorageFull(err)) throw err;
        const existing = await this.kv.get(key).catch(() => undefined);
        if (existing === undefined || existing === null) {
          if (verdict || tries >= defaults.createTries) throw err;
          continue; // unknown, or not there: try again (a create over our own landed write is a conflict, read then)
        }
        // Our own bytes after a write without a verdict: it landed. (A conflict on the first try is someone else's.)
        if ((!verdict || tries > 1) && sameBytes(existing.value, data)) return created(existing.revision);
        return { created: false, record: decodeJob(existing.value, record.id), revision: existing.revision };
      }
    }
  }

  /**
   * Apply the event `decide` picks for the current record, by CAS, re-reading
   * and re-deciding on conflict. `known` (a version the caller already holds,
   * from a watch or its own last write) saves the first read: a stale one only
   * costs a refused CAS and a re-read. Returns the record as it now is, its
   * revision, and whether this call changed it (false: not accepted, or
   * `decide` returned null).
   */
  async apply(
    id: string,
    decide: (r: JobRecord) => Decision,
    known?: Versioned<JobRecord>,
  ): Promise<{ record: JobRecord; revision: number; changed: boolean } | null> {
    for (let cur = known ?? await this.get(id);; cur = await this.get(id)) {
      if (!cur) return null;
      const applied = applyDecision(cur.value, decide(cur.value));
      if (!applied) return { record: cur.value, revision: cur.revision, changed: false };
      const { next, events } = applied;
      const data = encode(next);
      const changed = (revision: number) => {
        this.onChange(cur!.value, next, events[events.length - 1]!, revision, cur!.revision, events.slice(0, -1));
        return { record: next, revision, changed: true };
      };
      try {
        return changed(await this.kv.update(keys.job(id), data, cur.revision));
      } catch (err) {
        if (isCasConflict(err)) continue;
        // No verdict: if the key holds exactly what we wrote, at a later revision than the one we wrote over, it landed.
        const now = await this.kv.get(keys.job(id)).catch(() => null);
        if (now && now.revision > cur.revision && sameBytes(now.value, data)) return changed(now.revision);
        throw err;
      }
    }
  }

  /** Every record (for listing and the leader's index). */
  async all(): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for (const k of await this.kv.keys(keys.jobs)) {
      const r = await this.get(keys.jobIdOf(k));
      if (r) out.push(r.value);
    }
    return out;
  }
}

export const checkpointSchema = z.object({
  attempt: z.number(),
  seq: z.number(),
  progress: z.number(),
  state: z.unknown(),
  /** Written by a cancel's fence: the attempt it fenced ends as cancelled. */
  cancelled: z.literal(true).optional(),
});
export type Checkpoint = z.infer<typeof checkpointSchema>;

/** A job's checkpoint key as stored (undefined: none). */
async function readCheckpoint(kv: Bucket, id: string): Promise<{ value: Checkpoint; revision: number } | undefined> {
  const e = await kv.get(keys.job(id));
  return e ? { value: decode(checkpointSchema, e.value, `checkpoint '${id}'`), revision: e.revision } : undefined;
}

/**
 * Rewrite a job's checkpoint key by CAS (re-read on conflict) as `next` says, unless an attempt later than
 * `attempt` holds it: then nothing is written. Claims and cancel fences both.
 */
async function rewriteCheckpoint(
  kv: Bucket,
  id: string,
  attempt: number,
  next: (prev: Checkpoint | undefined) => Checkpoint,
): Promise<{ kind: 'written'; revision: number; prev: Checkpoint | undefined } | { kind: 'later'; attempt: number }> {
  for (;;) {
    const cur = await readCheckpoint(kv, id);
    if (cur && cur.value.attempt > attempt) return { kind: 'later', attempt: cur.value.attempt };
    const data = encode(next(cur?.value));
    try {
      const revision = cur ? await kv.update(keys.job(id), data, cur.revision) : await kv.create(keys.job(id), data);
      return { kind: 'written', revision, prev: cur?.value };
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
  }
}

/** The checkpoint slot one attempt owns, once claimed. */
export class CheckpointSlot {
  readonly kv: Bucket;
  readonly id: string;
  readonly attempt: number;
  #revision: number;
  #seq: number;
  /** What the previous attempts left (undefined if nothing). */
  readonly restored: Checkpoint | undefined;

  private constructor(kv: Bucket, id: string, attempt: number, revision: number, restored: Checkpoint | undefined) {
    this.kv = kv;
    this.id = id;
    this.attempt = attempt;
    this.#revision = revision;
    this.restored = restored;
    this.#seq = restored?.seq ?? 0;
  }

  /**
   * Claim the key for `attempt` by CAS; a zombie's later writes then fail.
   * A first attempt has no predecessor to fence and nothing to restore: it
   * claims nothing, and its first save creates the key (refused, as fenced, if
   * a later attempt claimed it meanwhile).
   */
  static async claim(kv: Bucket, id: string, attempt: number): Promise<CheckpointSlot> {
    if (attempt === 1) return new CheckpointSlot(kv, id, attempt, 0, undefined);
    const done = await rewriteCheckpoint(kv, id, attempt, (prev) => ({
      attempt,
      seq: prev?.seq ?? 0,
      progress: prev?.progress ?? 0,
      state: prev?.state,
    }));
    if (done.kind === 'later') throw new FencedError(`checkpoint of job ${id} belongs to attempt ${done.attempt}, not ${attempt}`);
    const { revision, prev } = done;
    return new CheckpointSlot(kv, id, attempt, revision, prev && prev.seq > 0 ? prev : undefined);
  }

  /**
   * Fence the key against `attempt` and every earlier one (a cancel does, before it writes the record): the
   * key is claimed for the next attempt number, keeping what it holds and marked `cancelled`, so a running
   * attempt's next save is refused with JobCancelledError (its owner then writes the cancel too, should the
   * canceller's own write not land). Nothing a later attempt claimed is touched.
   */
  static async fence(kv: Bucket, id: string, attempt: number): Promise<void> {
    await rewriteCheckpoint(kv, id, attempt, (prev) => ({
      ...(prev ?? { seq: 0, progress: 0, state: undefined }),
      attempt: attempt + 1,
      cancelled: true,
    }));
  }

  /** Whether this attempt claimed the key (attempt 1 never needs to). */
  get claimed(): boolean {
    return this.attempt > 1;
  }

  /** Revision of the slot's last write (the claim, then each save): the commit order of checkpoints. */
  get revision(): number {
    return this.#revision;
  }

  /** Returns the encoded size. */
  async save(state: unknown, progress: number): Promise<number> {
    const data = encode({ attempt: this.attempt, seq: this.#seq + 1, progress, state } satisfies Checkpoint);
    if (data.length > defaults.checkpointMaxBytes) throw new CheckpointTooLargeError(this.id, data.length, defaults.checkpointMaxBytes);
    try {
      this.#revision = this.#revision === 0
        ? await this.kv.create(keys.job(this.id), data)
        : await this.kv.update(keys.job(this.id), data, this.#revision);
      this.#seq++;
      return data.length;
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      const held = (await readCheckpoint(this.kv, this.id).catch(() => null))?.value;
      if (held?.cancelled && held.attempt > this.attempt) throw new JobCancelledError(`job ${this.id} is being cancelled`, { cause: err });
      throw new FencedError(`checkpoint of job ${this.id} was claimed by a newer attempt`, { cause: err });
    }
  }
}
