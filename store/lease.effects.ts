// The KV side of leases: the effects the pure lease machine needs (acquire by
// create or CAS takeover, renew by CAS update, release by CAS delete, watch the
// key, probe a holder) over a `Bucket` with a TTL.
import { fromCallback, fromPromise } from 'xstate';
import type {
  AcquireOutcome,
  AcquireRequest,
  LeaseEvent,
  LeaseHolder,
  ProbeRequest,
  RenewOutcome,
  RenewRequest,
  WatchRequest,
} from '../machines/lease.machine.ts';
import { judgeSilence, type Sighting } from '../machines/lease.rules.ts';
import { type Bucket, isCasConflict } from './bucket.ts';
import { encode } from './codec.ts';
import { defaults } from '../base/defaults.ts';
import { type LeaseRecord, type LeaseValue, readLease } from './lease.records.ts';
import type { Probe } from './lease.records.ts';
import { type Clock, realClock } from '../base/time.ts';

export type LeaseStoreOptions = {
  /** A getter: the bucket exists only once the node has bootstrapped. */
  kv: () => Bucket;
  /** Liveness of a holder (pings over NATS in a real process). */
  probe: Probe;
  /** Monotonic time for lease deadlines, wall time for `since`, timers for the prober. */
  clock?: Clock;
  /** Extra fields written with every put of a given key (a node's advert). */
  extras?: (key: string) => Pick<LeaseValue, 'node' | 'standby'>;
  /**
   * Whether this process pings a key's holder, given the key's value as it last read it (default: always).
   * With a standby named in the leader lease, only the standby does; the others poll the key.
   */
  pings?: (value: LeaseValue) => boolean;
  /** Told of a key's value each time a poll reads it (a standby learns it is one). */
  onRead?: (key: string, value: LeaseValue) => void;
  probeIntervalMs?: number;
  /** Off: followers never ping, they wait for the TTL (for benchmarks). */
  fastPath?: boolean;
};

const message = (err: unknown) => (err as Error).message;

/** The lease machine's effects, backed by a KV bucket with a TTL. */
export function leaseEffects(options: LeaseStoreOptions) {
  const clock = options.clock ?? realClock;
  const since = new Map<string, number>();
  /** When this process first saw each key's current revision (monotonic), across standby episodes. */
  const sightings = new Map<string, Sighting>();
  const valueFor = (key: string, holder: LeaseHolder, epoch: number | null): Uint8Array =>
    encode({ holder, epoch, since: since.get(key) ?? clock.now(), ...(options.extras?.(key) ?? {}) } satisfies LeaseValue);
  const ctx: EffectContext = { options, clock, valueFor, sightings, since };
  return {
    acquireLease: fromPromise<AcquireOutcome, AcquireRequest>(({ input }) => acquire(ctx, input)),
    renewLease: fromPromise<RenewOutcome, RenewRequest>(({ input }) => renew(ctx, input)),
    releaseLease: fromPromise<void, RenewRequest>(({ input }) => release(ctx, input)),
    watchKey: fromCallback<LeaseEvent, WatchRequest>(({ input, sendBack }) => watchKey(ctx, input, sendBack)),
    probeHolder: fromCallback<LeaseEvent, ProbeRequest>(({ input, sendBack }) => probeHolder(ctx, input, sendBack)),
  };
}

type EffectContext = {
  options: LeaseStoreOptions;
  clock: Clock;
  valueFor: (key: string, holder: LeaseHolder, epoch: number | null) => Uint8Array;
  sightings: Map<string, Sighting>;
  since: Map<string, number>;
};

async function acquire(c: EffectContext, input: AcquireRequest): Promise<AcquireOutcome> {
  c.since.set(input.key, c.clock.now());
  const sentAt = c.clock.mono();
  try {
    const value = c.valueFor(input.key, input.holder, null);
    const revision = input.takeoverRevision === null
      ? await c.options.kv().create(input.key, value)
      : await c.options.kv().update(input.key, value, input.takeoverRevision);
    return { type: 'acquired', revision, sentAt, receivedAt: c.clock.mono() };
  } catch (err) {
    if (!isCasConflict(err)) return { type: 'failed', message: message(err) };
    try {
      const current = await readLease(c.options.kv(), input.key);
      if (current) return { type: 'taken', revision: current.revision, holder: current.value.holder };
      return { type: 'failed', message: 'lease changed hands while acquiring' };
    } catch (readErr) {
      return { type: 'failed', message: message(readErr) };
    }
  }
}

async function renew(c: EffectContext, input: RenewRequest): Promise<RenewOutcome> {
  const sentAt = c.clock.mono();
  try {
    const revision = await c.options.kv().update(input.key, c.valueFor(input.key, input.holder, input.epoch), input.revision);
    return { type: 'renewed', revision, sentAt, receivedAt: c.clock.mono() };
  } catch (err) {
    if (!isCasConflict(err)) return { type: 'failed', message: message(err) };
    // A renewal that timed out may have landed after all: then the value is still ours.
    // A read that fails is no verdict (a renewal sent while disconnected lands on
    // reconnect, just as a server failover makes reads time out): try again.
    let current: LeaseRecord | null;
    try {
      current = await readLease(c.options.kv(), input.key);
    } catch (readErr) {
      return { type: 'failed', message: `lease '${input.key}' moved and could not be read: ${message(readErr)}` };
    }
    if (current && current.value.holder.instance === input.holder.instance && current.value.epoch === input.epoch) {
      return { type: 'ours', revision: current.revision };
    }
    return { type: 'conflict', message: `lease '${input.key}' was taken or expired` };
  }
}

/** CAS-delete our own value; a renewal still in flight may have moved its revision, so follow it, never anyone else's. */
async function release(c: EffectContext, input: RenewRequest): Promise<void> {
  let revision = input.revision;
  for (let tries = 0; tries < 3; tries++) {
    try {
      return await c.options.kv().delete(input.key, revision);
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      const current = await readLease(c.options.kv(), input.key);
      if (!current || current.value.holder.instance !== input.holder.instance) return; // not ours any more
      revision = current.revision;
    }
  }
  throw new Error(`could not release lease '${input.key}': it kept changing`);
}

/** For the actor's life: `key.freed` when the key is deleted or purged (a graceful release). */
function watchKey(c: EffectContext, input: WatchRequest, sendBack: (e: LeaseEvent) => void): () => void {
  let stopped = false;
  let watcher: { stop(): void } | null = null;
  c.options.kv().watch(input.key).then(async (iter) => {
    if (stopped) return iter.stop();
    watcher = iter;
    for await (const e of iter) {
      if (typeof e !== 'string' && (e.operation === 'DEL' || e.operation === 'PURGE')) sendBack({ type: 'key.freed' });
    }
  }).catch(() => {
    // The machine's poll is the backstop for a watch that fails.
  });
  return () => {
    stopped = true;
    watcher?.stop();
  };
}

/**
 * While standing by: poll the key (freed, changed hands, or silent for a TTL
 * by our own clock: see `judgeSilence`) and ping its holder (the fast path).
 */
function probeHolder(c: EffectContext, input: ProbeRequest, sendBack: (e: LeaseEvent) => void): () => void {
  let stopped = false;
  const timers: unknown[] = [];
  const later = (fn: () => Promise<void>, ms: number) => {
    if (!stopped) timers.push(c.clock.setTimeout(() => void fn(), ms));
  };
  const other = input.other;

  const poll = async () => {
    try {
      const current = await readLease(c.options.kv(), input.key);
      if (stopped) return;
      if (!current) return sendBack({ type: 'key.freed' });
      c.options.onRead?.(input.key, current.value);
      mayPing = c.options.pings?.(current.value) ?? true;
      if (!other || current.value.holder.instance !== other.holder.instance) {
        return sendBack({ type: 'holder.changed', holder: current.value.holder, revision: current.revision });
      }
      other.revision = current.revision; // a renewal: take over this one if it dies
      const { sighting, expired } = judgeSilence(c.sightings.get(input.key), current.revision, c.clock.mono(), input.ttlMs);
      c.sightings.set(input.key, sighting);
      if (expired) return sendBack({ type: 'holder.gone', revision: current.revision });
    } catch {
      // no verdict: look again
    }
    later(poll, input.pollIntervalMs);
  };

  let reportedAlive = false;
  /** Whether this process pings the holder (by the key's value as last read); until a poll has read it, yes. */
  let mayPing = true;
  const ping = async () => {
    if (!other || c.options.fastPath === false) return;
    if (!mayPing) return later(ping, input.pollIntervalMs);
    // The verdict is about the holder as of the ping: take over only the revision seen before it was sent (a
    // renewal a poll sees meanwhile, after the holder reconnected, is newer evidence and wins the CAS).
    const seen = other.revision;
    const l = await c.options.probe(other.holder);
    if (stopped) return;
    if (l === 'gone') return sendBack({ type: 'holder.gone', revision: seen });
    if (l === 'alive' && !reportedAlive) {
      reportedAlive = true;
      sendBack({ type: 'holder.alive' });
    }
    // Right after a SIGKILL the first ping can time out before the server
    // notices the closed socket: ask again at once rather than a full interval later.
    later(ping, l === 'unknown' ? 0 : c.options.probeIntervalMs ?? defaults.probeIntervalMs);
  };

  later(poll, input.pollIntervalMs);
  void ping();
  return () => {
    stopped = true;
    timers.forEach((t) => c.clock.clearTimeout(t));
  };
}
