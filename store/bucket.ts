// The one KV port Shoal uses: a small `Bucket` (get, create, update by
// revision, delete by revision, watch, keys). Per-key compare-and-swap is the
// law (docs/design.md, Safety rules), so a write that lost a race fails with
// `CasConflictError`, whatever implements the port. `natsBucket` implements it
// over nats.js KV; the simulation's in-memory KV (chaos/sim/memkv.ts) and its
// network (chaos/sim/net.ts) implement the same interface.
import { JetStreamApiError } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { defaults } from '../base/defaults.ts';

/** One stored value (or, from a watch, a delete marker). `revision` is the bucket's sequence: it only grows. */
export type Entry = {
  key: string;
  value: Uint8Array;
  revision: number;
  operation: 'PUT' | 'DEL' | 'PURGE';
  /** When the server stored it. */
  created: Date;
};

/**
 * Marks, once per watch, that every value that existed when the watch began
 * has been delivered (at once if there were none): a reader is caught up.
 */
export const caughtUp = 'caught-up' as const;

/** The values of matching keys as they are, then every change, in revision order, until `stop()`. */
export type Watch = AsyncIterable<Entry | typeof caughtUp> & { stop(): void };

export interface Bucket {
  readonly name: string;
  /** The live value of `key`, or null (never stored, deleted, purged or expired). */
  get(key: string): Promise<Entry | null>;
  /** Store a new key; `CasConflictError` if it holds a live value. Returns the revision. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Replace the value at `revision`; `CasConflictError` if the key has moved on. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  /** Delete (a marker: watches see it); with `revision`, only if the key is still at it. */
  delete(key: string, revision?: number): Promise<void>;
  /**
   * Delete for good (retention): as `delete`, but the marker expires after `defaults.purgeMarkerTtlMs` where
   * the bucket allows per-message TTL (nats-server 2.11+); elsewhere one marker stays per key.
   */
  purge(key: string, revision?: number): Promise<void>;
  /**
   * Remove what `key` held up to `revision` from the stream (a value, or the marker a delete or purge left),
   * leaving nothing behind and no watch event; a newer value stays. Needs the stream purge permission.
   */
  compact(key: string, revision: number): Promise<void>;
  /** `filter` is a key or a NATS-style wildcard (`job.>`, `node.*`). */
  watch(filter: string): Promise<Watch>;
  /**
   * Keys stored under `filter`: with a value, or with a delete marker (`get`
   * tells which hold a value); expired keys are gone. One request on the
   * server, no consumer: the view is atomic.
   */
  keys(filter: string): Promise<string[]>;
  /** The bucket's latest revision (any key, deletes included): what a watch of every key has seen once caught up. */
  lastRevision(): Promise<number>;
}

/** A compare-and-swap refused: the key is not at the expected revision (or, for create, exists). */
export class CasConflictError extends Error {
  readonly code = 'CAS_CONFLICT';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CasConflictError';
  }
}

export function isCasConflict(err: unknown): err is CasConflictError {
  return err instanceof CasConflictError;
}

/**
 * JetStream refused a write for space: the stream's byte limit (10077, "maximum bytes exceeded") or the
 * server's or account's storage (10047, 10023). New keys are refused; the API answers 507.
 */
export function isStorageFull(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return [10077, 10047, 10023].includes(err.code);
  return err instanceof Error && /maximum bytes exceeded|insufficient (storage )?resources/i.test(err.message);
}

/** JetStream's "wrong last sequence" (API error 10071): the expected revision did not hold. */
const wrongLastSequence = 10071;

function translate(err: unknown, what: string): unknown {
  const conflict = err instanceof JetStreamApiError
    ? err.code === wrongLastSequence
    : err instanceof Error && /wrong last sequence/i.test(err.message);
  return conflict ? new CasConflictError(`${what}: ${(err as Error).message}`, { cause: err }) : err;
}

async function cas<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw translate(err, what);
  }
}

function entryOf(e: KvEntry): Entry {
  return { key: e.key, value: e.value, revision: e.revision, operation: e.operation, created: e.created };
}

/** The port over a nats.js KV bucket (requests time out as the bucket's JetStream client says). */
export function natsBucket(kv: KV, name: string, jsm: JetStreamManager, opts: { markerTtlMs?: number } = {}): Bucket {
  const markerTtlMs = opts.markerTtlMs ?? defaults.purgeMarkerTtlMs;
  const stream = `KV_${name}`;
  const prefix = `$KV.${name}.`;
  // The stream's subjects, from one stream-info request (paged by the client): nats.js's kv.keys()
  // runs a consumer that can miss a key being rewritten meanwhile (history 1 deletes the old message),
  // and leaves the consumer behind on the server for minutes.
  const keys = async (filter: string) => {
    const info = await jsm.streams.info(stream, { subjects_filter: `${prefix}${filter}` });
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
  };
  // Whether the bucket's stream takes per-message TTL (created with it on 2.11+): asked once, on the first purge.
  let markersExpire: Promise<boolean> | null = null;
  const ttlOf = () =>
    markersExpire ??= jsm.streams.info(stream).then((i) => (i.config as { allow_msg_ttl?: boolean }).allow_msg_ttl === true)
      .catch(() => {
        markersExpire = null;
        return false;
      });
  return {
    name,
    async get(key) {
      const e = await kv.get(key);
      return e && e.operation === 'PUT' ? entryOf(e) : null;
    },
    create: (key, value) => cas(`create ${name}/${key}`, kv.create(key, value)),
    update: (key, value, revision) => cas(`update ${name}/${key} at revision ${revision}`, kv.update(key, value, revision)),
    delete: (key, revision) => cas(`delete ${name}/${key}`, kv.delete(key, revision === undefined ? {} : { previousSeq: revision })),
    async purge(key, revision) {
      const ttl = (await ttlOf()) ? `${Math.ceil(markerTtlMs / 1000)}s` : undefined;
      await cas(
        `purge ${name}/${key}`,
        kv.purge(key, { ...(revision === undefined ? {} : { previousSeq: revision }), ...(ttl ? { ttl } : {}) }),
      );
    },
    async compact(key, revision) {
      await jsm.streams.purge(stream, { filter: `${prefix}${key}`, seq: revision + 1 });
    },
    keys,
    lastRevision: async () => (await jsm.streams.info(stream)).state.last_seq,
    async watch(filter) {
      const iter = await kv.watch({ key: filter });
      // nats.js flags the last of the initial values (or, with none, every later one) `isUpdate`;
      // with no matching key there is no entry to carry the flag, so look first.
      const empty = (await keys(filter)).length === 0;
      async function* items(): AsyncGenerator<Entry | typeof caughtUp> {
        let caught = empty;
        if (empty) yield caughtUp;
        for await (const e of iter) {
          yield entryOf(e);
          if (!caught && e.isUpdate) {
            caught = true;
            yield caughtUp;
          }
        }
      }
      return Object.assign(items(), { stop: () => iter.stop() });
    },
  };
}
