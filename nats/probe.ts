// Liveness evidence for the failover fast path: each process incarnation
// answers pings on its own subject, so "no responders" means its connection is
// gone. A timeout means nothing (the holder may be slow or paused).
import { type NatsConnection, NoRespondersError, RequestError } from '@nats-io/transport-node';
import type { LeaseHolder } from '../machines/lease.machine.ts';
import type { Probe } from '../store/lease.records.ts';
import { defaults } from '../base/defaults.ts';
import type { Names } from './subjects.ts';
import { type Clock, realClock, sleep } from '../base/time.ts';
import type { ReplyGuard } from './reply.ts';

/** A NATS request that nobody subscribes to answer (nats.js says so in two ways). */
export function isNoResponders(err: unknown): boolean {
  return err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders());
}

/** Ping a holder's own subject: "no responders" is 'gone', a timeout 'unknown'. */
export function natsProbe(nc: NatsConnection, n: Names, timeoutMs: number = defaults.probeTimeoutMs): Probe {
  return async (holder) => {
    try {
      await nc.request(n.nodePing(holder.id, holder.instance), undefined, { timeout: timeoutMs });
      return 'alive';
    } catch (err) {
      return isNoResponders(err) ? 'gone' : 'unknown';
    }
  };
}

/**
 * A probe whose "gone" is confirmed: "no responders" twice, `confirmMs` apart.
 * A holder that is only reconnecting (its server died) answers the second ping.
 * Unless `final()` says a first "no responders" already settles it: a lone
 * server (no cluster) that answered us is alive, so the holder's connection to
 * it, the only server there is, is gone.
 */
export function confirmGone(
  probe: Probe,
  clock: Clock = realClock,
  options: { confirmMs?: number; final?: () => boolean } = {},
): Probe {
  return async (holder) => {
    const first = await probe(holder);
    if (first !== 'gone' || options.final?.()) return first;
    await sleep(options.confirmMs ?? defaults.probeConfirmMs, undefined, clock);
    return probe(holder);
  };
}

/** Whether this connection's server stands alone (no cluster): there, "no responders" needs no confirmation. */
export const loneServer = (nc: NatsConnection) => () => nc.info !== undefined && !nc.info.cluster;

/**
 * Whether this connection has had a round trip to its server (a flush: PING,
 * PONG) within `timeoutMs`, checked every `everyMs`; `onChange` hears each flip.
 * Returns the stop function.
 */
export function watchContact(
  nc: NatsConnection,
  options: {
    timeoutMs: number;
    everyMs: number;
    onChange: (inContact: boolean) => void;
    /** The round trip (default: a flush to the node's own server). */
    roundTrip?: () => Promise<unknown>;
    clock?: Clock;
  },
): () => void {
  const roundTrip = options.roundTrip ?? (() => nc.flush());
  const clock = options.clock ?? realClock;
  let lastOk = clock.mono();
  let pending = false;
  let inContact = true;
  const timer = setInterval(() => {
    const now = clock.mono();
    if (!pending && !nc.isClosed()) {
      pending = true;
      roundTrip().then(() => (lastOk = Math.max(lastOk, now)), () => {}).finally(() => (pending = false));
    }
    const fresh = clock.mono() - lastOk < options.timeoutMs;
    if (fresh !== inContact) options.onChange(inContact = fresh);
  }, options.everyMs);
  return () => clearInterval(timer);
}

/** Answer pings for this process incarnation (the other half of `natsProbe`), only to an inbox. */
export function servePing(nc: NatsConnection, n: Names, holder: LeaseHolder, guard: ReplyGuard) {
  return nc.subscribe(n.nodePing(holder.id, holder.instance), { callback: (_err, msg) => void guard.respond(msg, 'ping') });
}

/** A request or subscription the server refused for these credentials. */
export const isPermissionDenied = (err: unknown) => /permissions? violation/i.test((err as Error)?.message ?? '');

export type CredentialsRole = {
  role: 'admin' | 'node' | 'client' | 'none';
  api: boolean | null;
  js: boolean | null;
  admin: boolean | null;
};

/**
 * What these credentials may do: the public API, the JetStream API, the admin
 * endpoints. Yes on any answer (an error reply included), no on a permissions
 * error, null on silence. Nothing is changed: the admin probe is an empty
 * drain request every node refuses.
 */
export async function credentialsRole(nc: NatsConnection, n: Names, timeoutMs = 2_000): Promise<CredentialsRole> {
  const may = async (subject: string): Promise<boolean | null> => {
    try {
      await nc.request(subject, '{}', { timeout: timeoutMs });
      return true;
    } catch (err) {
      return isPermissionDenied(err) ? false : null;
    }
  };
  const [api, js, admin] = [await may(n.api('status')), await may('$JS.API.INFO'), await may(n.api('nodes.drain'))];
  return { role: admin && js ? 'admin' : js ? 'node' : api ? 'client' : 'none', api, js, admin };
}
