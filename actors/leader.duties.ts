// What the leader does while it holds the lease. Leadership is an
// optimisation: every write here is a CAS, so two leaders at once stay safe.
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { fromCallback, fromPromise } from 'xstate';
import type { CoordinatorEvent, DutyInput } from '../machines/coordinator.machine.ts';
import type { LeaseHolder } from '../machines/lease.machine.ts';
import { isCasConflict, probe, readLease } from '../streams/lease.store.ts';
import type { Names } from '../streams/subjects.ts';
import type { Log } from './log.ts';

export type DutyDeps = { nc: NatsConnection; names: Names; leases: () => KV; self: LeaseHolder; log: Log; fastPath: boolean };

export function leaderDuties(d: DutyDeps) {
  /**
   * Reap the leases of nodes whose connection is gone ("no responders"), so
   * their work can move at once instead of a TTL later. A node that was only
   * reconnecting finds its lease gone and fences itself.
   */
  const recover = fromPromise<void, DutyInput>(async ({ input }) => {
    if (!d.fastPath) return;
    const kv = d.leases();
    const keys: string[] = [];
    for await (const k of await kv.keys('node.>')) keys.push(k);
    for (const key of keys) {
      const lease = await readLease(kv, key);
      if (!lease || lease.value.holder.instance === d.self.instance) continue;
      if ((await probe(d.nc, d.names, lease.value.holder)) !== 'gone') continue;
      if (performance.now() >= input.validUntil) return; // our own lease may be gone: act no more
      try {
        await kv.delete(key, { previousSeq: lease.revision });
        d.log(`reaped lease of dead node ${lease.value.holder.id} (epoch ${input.epoch})`);
      } catch (err) {
        if (!isCasConflict(err)) throw err; // renewed meanwhile: it was alive after all
      }
    }
  });

  /** Placement comes with jobs; for now the leader only idles between recoveries. */
  const place = fromCallback<CoordinatorEvent, DutyInput>(() => () => {});

  return { recover, place };
}
