// The KV side of leases: the effects the pure lease machine needs (acquire by
// create or CAS takeover, renew by CAS update, release by CAS delete, watch the
// holder) and the liveness probe behind the failover fast path.
import type { KV } from '@nats-io/kv';
import { NoRespondersError, RequestError, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import { fromCallback, fromPromise } from 'xstate';
import { z } from 'zod';
import type {
  AcquireOutcome,
  AcquireRequest,
  LeaseEvent,
  LeaseHolder,
  RenewOutcome,
  RenewRequest,
  ProbeRequest,
  WatchRequest,
} from '../machines/lease.machine.ts';
import { decode, encode } from './codec.ts';
import { defaults } from './defaults.ts';
import type { Names } from './subjects.ts';
import { realClock, sleep, type Clock } from './time.ts';

export const holderSchema = z.object({ id: z.string(), instance: z.string() });

export const nodeAdvertSchema = z.object({
  pid: z.number(),
  host: z.string(),
  runtime: z.string(),
  slots: z.number(),
  labels: z.record(z.string(), z.string()),
  state: z.string(),
  startedAt: z.number(),
  /** Job types this node handles. */
  types: z.array(z.string()),
  /** Jobs it runs now. */
  running: z.number(),
});
export type NodeAdvert = z.infer<typeof nodeAdvertSchema>;

export const leaseValueSchema = z.object({
  holder: holderSchema,
  /** The acquiring revision; null until the first renewal can write it. */
  epoch: z.number().nullable(),
  /** Wall-clock ms when this holder acquired the lease. */
  since: z.number(),
  node: nodeAdvertSchema.optional(),
});
export type LeaseValue = z.infer<typeof leaseValueSchema>;

export type LeaseRecord = { key: string; value: LeaseValue; revision: number; epoch: number; written: Date };

const wrongLastSequence = 10071;

export function isCasConflict(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === wrongLastSequence;
  return err instanceof Error && /wrong last sequence/i.test(err.message);
}

export function decodeLease(key: string, bytes: Uint8Array, revision: number, written: Date): LeaseRecord {
  const value = decode(leaseValueSchema, bytes, `lease '${key}'`);
  return { key, value, revision, epoch: value.epoch ?? revision, written };
}

export async function readLease(kv: KV, key: string): Promise<LeaseRecord | null> {
  const e = await kv.get(key);
  if (!e || e.operation !== 'PUT') return null;
  return decodeLease(key, e.value, e.revision, e.created);
}

export type Liveness = 'alive' | 'gone' | 'unknown';

/** Is this holder's process still connected? Evidence for the failover fast path. */
export type Probe = (holder: LeaseHolder) => Promise<Liveness>;

/**
 * Ping a holder's own subject. "No responders" means its connection is gone
 * (evidence of death); a timeout means nothing (it may be slow or paused).
 */
export function natsProbe(nc: NatsConnection, n: Names, timeoutMs: number = defaults.probeTimeoutMs): Probe {
  return async (holder) => {
    try {
      await nc.request(n.nodePing(holder.id, holder.instance), undefined, { timeout: timeoutMs });
      return 'alive';
    } catch (err) {
      if (err instanceof NoRespondersError) return 'gone';
      if (err instanceof RequestError && err.isNoResponders()) return 'gone';
      return 'unknown';
    }
  };
}

/**
 * A probe whose "gone" is confirmed: "no responders" twice, `confirmMs` apart.
 * A holder that is only reconnecting (its server died) answers the second ping.
 */
export function confirmGone(probe: Probe, clock: Clock = realClock, confirmMs: number = defaults.probeConfirmMs): Probe {
  return async (holder) => {
    const first = await probe(holder);
    if (first !== 'gone') return first;
    await sleep(confirmMs, undefined, clock);
    return probe(holder);
  };
}

/** Answer pings for this process incarnation (the other half of `probe`). */
export function servePing(nc: NatsConnection, n: Names, holder: LeaseHolder) {
  return nc.subscribe(n.nodePing(holder.id, holder.instance), {
    callback: (_err, msg) => {
      msg.respond();
    },
  });
}

export type LeaseStoreOptions = {
  /** A getter: the bucket exists only once the node has bootstrapped. */
  kv: () => KV;
  /** Liveness of a holder (pings over NATS in a real process). */
  probe: Probe;
  /** Monotonic time for lease deadlines, wall time for `since`, timers for the prober. */
  clock?: Clock;
  /** Extra fields written with every put of a given key (a node's advert). */
  extras?: (key: string) => Pick<LeaseValue, 'node'>;
  probeIntervalMs?: number;
  /** Off: followers never ping, they wait for the TTL (for benchmarks). */
  fastPath?: boolean;
};

/** The lease machine's effects, backed by a KV bucket with a TTL. */
export function leaseEffects(o: LeaseStoreOptions) {
  const clock = o.clock ?? realClock;
  const now = () => clock.mono();
  const since = new Map<string, number>();
  /** When this process first saw each key's current revision (monotonic), across standby episodes. */
  const firstSeen = new Map<string, { revision: number; at: number }>();
  const valueFor = (key: string, holder: LeaseHolder, epoch: number | null): Uint8Array =>
    encode({ holder, epoch, since: since.get(key) ?? clock.now(), ...(o.extras?.(key) ?? {}) } satisfies LeaseValue);

  const acquireLease = fromPromise<AcquireOutcome, AcquireRequest>(async ({ input }) => {
    since.set(input.key, clock.now());
    const sentAt = now();
    try {
      const value = valueFor(input.key, input.holder, null);
      const revision = input.takeoverRevision === null
        ? await o.kv().create(input.key, value)
        : await o.kv().update(input.key, value, input.takeoverRevision);
      return { type: 'acquired', revision, sentAt, receivedAt: now() };
    } catch (err) {
      if (!isCasConflict(err)) return { type: 'failed', message: (err as Error).message };
      try {
        const current = await readLease(o.kv(), input.key);
        if (current) return { type: 'taken', revision: current.revision, holder: current.value.holder };
        return { type: 'failed', message: 'lease changed hands while acquiring' };
      } catch (readErr) {
        return { type: 'failed', message: (readErr as Error).message };
      }
    }
  });

  const renewLease = fromPromise<RenewOutcome, RenewRequest>(async ({ input }) => {
    const sentAt = now();
    try {
      const revision = await o.kv().update(input.key, valueFor(input.key, input.holder, input.epoch), input.revision);
      return { type: 'renewed', revision, sentAt, receivedAt: now() };
    } catch (err) {
      if (!isCasConflict(err)) return { type: 'failed', message: (err as Error).message };
      // A renewal that timed out may have landed after all: then the value is still ours.
      // A read that fails is no verdict (a renewal sent while disconnected lands on
      // reconnect, just as a server failover makes reads time out): try again.
      let current: LeaseRecord | null;
      try {
        current = await readLease(o.kv(), input.key);
      } catch (readErr) {
        return { type: 'failed', message: `lease '${input.key}' moved and could not be read: ${(readErr as Error).message}` };
      }
      if (current && current.value.holder.instance === input.holder.instance && current.value.epoch === input.epoch) {
        return { type: 'ours', revision: current.revision };
      }
      return { type: 'conflict', message: `lease '${input.key}' was taken or expired` };
    }
  });

  /** CAS-delete our own value; a renewal still in flight may have moved its revision, so follow it, never anyone else's. */
  const releaseLease = fromPromise<void, RenewRequest>(async ({ input }) => {
    let revision = input.revision;
    for (let tries = 0; tries < 3; tries++) {
      try {
        return await o.kv().delete(input.key, { previousSeq: revision });
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        const current = await readLease(o.kv(), input.key);
        if (!current || current.value.holder.instance !== input.holder.instance) return; // not ours any more
        revision = current.revision;
      }
    }
    throw new Error(`could not release lease '${input.key}': it kept changing`);
  });

  const watchKey = fromCallback<LeaseEvent, WatchRequest>(({ input, sendBack }) => {
    let stopped = false;
    let watcher: { stop(): void } | null = null;
    o.kv().watch({ key: input.key }).then(async (iter) => {
      if (stopped) return iter.stop();
      watcher = iter;
      for await (const e of iter) {
        if (e.operation === 'DEL' || e.operation === 'PURGE') sendBack({ type: 'key.freed' });
      }
    }).catch(() => {
      // The machine's poll is the backstop for a watch that fails.
    });
    return () => {
      stopped = true;
      watcher?.stop();
    };
  });

  const probeHolder = fromCallback<LeaseEvent, ProbeRequest>(({ input, sendBack }) => {
    let stopped = false;
    const timers: unknown[] = [];
    const later = (fn: () => Promise<void>, ms: number) => {
      if (!stopped) timers.push(clock.setTimeout(() => void fn(), ms));
    };
    const other = input.other;

    // TTL expiry raises no watch event before nats-server 2.11, and under
    // concurrent writes 2.10 may expire a key up to ~2 TTL late: so look, and
    // judge expiry by our own clock. A revision unrenewed for a TTL since we
    // first saw it belongs to a holder whose own deadline (TTL - margin from
    // before that write) has passed: taking it over by CAS is safe.
    const seen = () => firstSeen.get(input.key);
    const poll = async () => {
      try {
        const current = await readLease(o.kv(), input.key);
        if (stopped) return;
        if (!current) return sendBack({ type: 'key.freed' });
        if (!other || current.value.holder.instance !== other.holder.instance) {
          return sendBack({ type: 'holder.changed', holder: current.value.holder, revision: current.revision });
        }
        other.revision = current.revision; // a renewal: take over this one if it dies
        const first = seen();
        if (first?.revision !== current.revision) firstSeen.set(input.key, { revision: current.revision, at: now() });
        else if (now() - first.at >= input.ttlMs) return sendBack({ type: 'holder.gone', revision: current.revision });
      } catch {
        // no verdict: look again
      }
      later(poll, input.pollIntervalMs);
    };

    let reportedAlive = false;
    const ping = async () => {
      if (!other || o.fastPath === false) return;
      const l = await o.probe(other.holder);
      if (stopped) return;
      if (l === 'gone') return sendBack({ type: 'holder.gone', revision: other.revision });
      if (l === 'alive' && !reportedAlive) {
        reportedAlive = true;
        sendBack({ type: 'holder.alive' });
      }
      // Right after a SIGKILL the first ping can time out before the server
      // notices the closed socket: ask again at once rather than a full interval later.
      later(ping, l === 'unknown' ? 0 : o.probeIntervalMs ?? defaults.probeIntervalMs);
    };

    later(poll, input.pollIntervalMs);
    void ping();
    return () => {
      stopped = true;
      timers.forEach((t) => clock.clearTimeout(t));
    };
  });

  return { acquireLease, renewLease, releaseLease, watchKey, probeHolder };
}

export type ClusterView = {
  leader: { nodeId: string; epoch: number; since: string } | null;
  nodes: Array<{
    id: string; pid: number; host: string; runtime: string; state: string; slots: number; running: number; types: string[];
    labels: Record<string, string>; lastSeen: string; epoch: number;
  }>;
};

/** Who leads and which nodes are alive, straight from the leases bucket. */
export async function readCluster(kv: KV): Promise<ClusterView> {
  const leader = await readLease(kv, 'leader');
  const keys: string[] = [];
  for await (const k of await kv.keys('node.>')) keys.push(k);
  const nodes: ClusterView['nodes'] = [];
  for (const key of keys.sort()) {
    const l = await readLease(kv, key);
    if (!l?.value.node) continue;
    const a = l.value.node;
    nodes.push({
      id: l.value.holder.id, pid: a.pid, host: a.host, runtime: a.runtime, state: a.state, slots: a.slots, running: a.running, types: a.types,
      labels: a.labels, lastSeen: l.written.toISOString(), epoch: l.epoch,
    });
  }
  return {
    leader: leader ? { nodeId: leader.value.holder.id, epoch: leader.epoch, since: new Date(leader.value.since).toISOString() } : null,
    nodes,
  };
}
