// What travels over the simulated network besides raw requests: the
// placement messages (offers and bids, assignments, the "jobs queued" hint),
// the API's notifications, and KV buckets (every call a request, a watch a push
// consumer). The same shapes a real node gets over NATS.
import type { Bucket, caughtUp, Entry, Watch } from '../../store/bucket.ts';
import { defaults, leaseRequestTimeoutMs } from '../../base/defaults.ts';
import type { Bid, Offer } from '../../nats/messages.ts';
import type { Notify, PlacementTransport } from '../../nats/placement.ts';
import { type MemKv, pushQueue } from './memkv.ts';
import { type Conn, type SimNet, SimNoResponders } from './net.ts';
import { type IntakeWire, NoDispatcher } from '../../nats/dispatch.ts';

/** The leader's side of placement over this network. */
export function simPlacement(net: SimNet, from: Conn): PlacementTransport {
  return {
    auction: (offer: Offer, expect: number, maxWaitMs: number) =>
      new Promise<Bid[]>((resolve) => {
        const bids: Bid[] = [];
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          from.view.clearTimeout(timer);
          resolve(bids);
        };
        const timer = from.view.setTimeout(finish, maxWaitMs);
        net.publish(from, (c) => c.inbox !== null, (c) => {
          const bid = c.inbox!.offer(offer);
          if (bid instanceof Promise) throw new Error('the simulation scores bids synchronously');
          if (bid) {
            net.up(c, () =>
              net.down(from, () => {
                if (done) return;
                bids.push(bid);
                if (expect > 0 && bids.length >= expect) finish();
              }));
          }
        });
      }),
    assign: (node, jobs, preempt) =>
      net.publish(from, (c) => c.node === node && c.inbox !== null, (c) => void c.inbox!.assign(jobs, preempt)),
    deliver: (node, batch) => {
      // The dispatcher dies between committing records and sending their assignments.
      if (from.crashBeforeAssign) {
        from.crashBeforeAssign = false;
        from.crash();
        return Promise.resolve(null);
      }
      return net.ask(
        from,
        (c) => c.node === node && c.inbox !== null,
        async (c) => c.inbox!.assign(batch.jobs, undefined, batch.epoch),
        defaults.assignAckTimeoutMs,
        `assign ${node}`,
      ).catch(() => null);
    },
    onQueued: (fn) => {
      from.queued.add(fn);
      return () => from.queued.delete(fn);
    },
  };
}

/** What a node's API endpoints tell the cluster, over this network. */
export function simNotify(net: SimNet, from: Conn): Notify {
  const toNode = (node: string) => (c: Conn) => c.node === node && c.inbox !== null;
  return {
    queued: () => net.publish(from, (c) => c.queued.size > 0, (c) => c.queued.forEach((fn) => fn())),
    cancel: (node, ids) => net.publish(from, toNode(node), (c) => c.inbox!.cancel(ids)),
  };
}

/** A `Bucket` for `mem` on connection `c`: every call is a request (or, for watch, a push consumer). */
export function simBucket(net: SimNet, c: Conn, mem: MemKv): Bucket {
  // The leases bucket (the one with a TTL) waits as long as a real node's lease requests do.
  const timeoutMs = mem.ttlMs > 0 ? leaseRequestTimeoutMs(mem.ttlMs) : defaults.kvTimeoutMs;
  const req = <T>(what: string, fn: () => Promise<T>) => net.request(c, `${mem.name}.${what}`, fn, timeoutMs);
  return {
    name: mem.name,
    get: (key) => req('get', () => mem.get(key)),
    create: (key, value) => req('create', () => mem.create(key, value)),
    update: (key, value, revision) => req('update', () => mem.update(key, value, revision)),
    delete: (key, revision) => req('delete', () => mem.delete(key, revision)),
    purge: (key, revision) => req('purge', () => mem.purge(key, revision)),
    compact: (key, revision) => req('compact', () => mem.compact(key, revision)),
    keys: (filter) => req('keys', () => mem.keys(filter)),
    lastRevision: () => req('info', () => mem.lastRevision()),
    watch: (filter) => simWatch(net, c, mem, filter),
  };
}

/** A push consumer: created by a request, then entries pushed in order; `stop()` ends it. */
async function simWatch(net: SimNet, c: Conn, mem: MemKv, filter: string): Promise<Watch> {
  const feed = pushQueue<Entry | typeof caughtUp>();
  let serverSide: { stop(): void } | null = null;
  await net.request(c, `${mem.name}.watch`, async () => {
    if (c.dead || c.server === 'closed') return;
    const iter = await mem.watch(filter);
    serverSide = iter;
    c.watches.add(iter);
    void (async () => {
      for await (const e of iter) {
        net.down(c, () => feed.push(e), true);
      }
    })();
  });
  return Object.assign(feed.iter, {
    stop: () => {
      feed.stop();
      const s = serverSide as { stop(): void } | null;
      if (s) {
        c.watches.delete(s);
        net.up(c, () => s.stop());
      }
    },
  });
}

/** The dispatcher's intake over this network: served by the connection of the node that dispatches. */
export function simIntakeWire(net: SimNet, from: Conn): IntakeWire {
  return {
    send: (items, timeoutMs) =>
      // Unsubscribed by the time it arrives: the request is lost (as over NATS) and the caller times out.
      net.ask(from, (c) => c.intake !== null, (c) => (c.intake ? c.intake(items) : new Promise<never>(() => {})), timeoutMs, 'intake')
        .catch((err) => {
          throw err instanceof SimNoResponders ? new NoDispatcher({ cause: err }) : err;
        }),
    serve(intake) {
      from.intake = intake;
      return () => {
        if (from.intake === intake) from.intake = null;
      };
    },
  };
}
