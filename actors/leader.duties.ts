// What the leader does while it holds the lease: recovery (reap dead nodes,
// requeue what they owned, requeue assignments never started) and placement
// (auction). Leadership is an optimisation: every write here is a CAS on one
// record, guarded by the job machine, so two leaders at once stay safe.
import { fromCallback, fromPromise } from 'xstate';
import type { CoordinatorEvent, DutyInput } from '../machines/coordinator.machine.ts';
import { lastAttempt, type JobRecord } from '../machines/job.machine.ts';
import type { LeaseHolder } from '../machines/lease.machine.ts';
import { defaults } from '../streams/defaults.ts';
import type { JobStore } from '../streams/job.store.ts';
import { isCasConflict, type Bucket } from '../streams/bucket.ts';
import { readCluster, readLease, type ClusterView } from '../streams/lease.records.ts';
import type { Probe } from '../streams/probe.ts';
import type { Offer } from '../streams/messages.ts';
import type { PlacementTransport } from '../streams/placement.ts';
import { keys } from '../streams/subjects.ts';
import { realClock, type Clock } from '../streams/time.ts';
import type { JobIndex } from './job.index.ts';
import type { Log } from './log.ts';

export type DutyDeps = {
  leases: () => Bucket;
  jobs: () => { store: JobStore; index: JobIndex };
  self: LeaseHolder;
  log: Log;
  fastPath: boolean;
  /** Our leader lease is still valid, by the real clock, right now. */
  leading: () => boolean;
  /** Liveness of a node lease's holder (the fast path's evidence). */
  probe: Probe;
  /** Offers, bids, assignments and the "jobs queued" hint. */
  transport: PlacementTransport;
  /** Event times and the placement timer. */
  clock?: Clock;
  /** Told of each dead node's lease this leader deleted (for the history). */
  onReap?: (holder: LeaseHolder, epoch: number) => void;
};

export function leaderDuties(d: DutyDeps) {
  const clock = d.clock ?? realClock;
  /** Job types some live node handles (from their adverts), refreshed by recovery. */
  let knownTypes: Set<string> | null = null;
  /** Ready nodes at the last look: every one of them answers an offer. */
  let readyNodes = 0;
  const typesOf = (view: ClusterView) => {
    readyNodes = view.nodes.filter((x) => x.state === 'ready').length;
    return new Set(view.nodes.flatMap((x) => x.types));
  };
  const liveTypes = async () => typesOf(await readCluster(d.leases()));

  async function reapDeadNodes(kv: Bucket): Promise<void> {
    if (!d.fastPath) return;
    for (const key of await kv.keys(keys.nodes)) {
      const lease = await readLease(kv, key);
      if (!lease || lease.value.holder.instance === d.self.instance) continue;
      if ((await d.probe(lease.value.holder)) !== 'gone' || !d.leading()) continue;
      try {
        await kv.delete(key, lease.revision);
        d.onReap?.(lease.value.holder, lease.epoch);
        d.log(`reaped lease of dead node ${lease.value.holder.id}`);
      } catch (err) {
        if (!isCasConflict(err)) throw err; // renewed meanwhile: it was alive after all
      }
    }
  }

  /**
   * Reap the leases of nodes whose connection is gone ("no responders"), so
   * their jobs move at once instead of a TTL later; then requeue every job
   * whose owner has no lease, or runs under a newer lease term than the one
   * the attempt started in (it was fenced, or restarted, and re-joined: lease
   * loss is fail-stop, nothing runs that attempt any more), and assignments
   * nobody started in time.
   */
  const recover = fromPromise<void, DutyInput>(async () => {
    const kv = d.leases();
    await reapDeadNodes(kv);
    const view = await readCluster(kv);
    const epochs = new Map(view.nodes.map((x) => [x.id, x.epoch]));
    knownTypes = typesOf(view);
    const { store, index } = d.jobs();
    await index.ready();
    const now = clock.now();
    const moves: Array<Promise<unknown>> = [];
    for (const r of index.live.values()) {
      if (!d.leading()) return;
      const owned = r.state === 'assigned' || r.state === 'running';
      const started = r.state === 'running' ? lastAttempt(r)?.nodeEpoch : null;
      const why = !owned || !r.owner ? null
        : !epochs.has(r.owner) ? 'is gone'
        : typeof started === 'number' && epochs.get(r.owner) !== started ? `lost the lease term (epoch ${started}) it ran under`
        : null;
      if (why) {
        // Decided on the index's copy: write only if the record still holds that attempt.
        moves.push(store.apply(r.id, (c) => (c.attempt === r.attempt ? { type: 'job.orphan', attempt: c.attempt, at: clock.now() } : null)).then((x) => {
          if (x?.changed) d.log(`job ${r.id}: owner ${r.owner} ${why}, requeued`);
        }));
      } else if (r.state === 'assigned') {
        const a = lastAttempt(r);
        if (a && now - a.assignedAt > defaults.startTimeoutMs) {
          moves.push(store.apply(r.id, (c) => (c.attempt === r.attempt ? { type: 'job.unstarted', attempt: c.attempt, at: clock.now() } : null)));
        }
      }
    }
    await Promise.allSettled(moves);
  });

  /** The auction loop: offer queued jobs, collect bids, award greedily by CAS, notify winners. */
  const place = fromCallback<CoordinatorEvent, DutyInput>(({ input }) => {
    let stopped = false;
    let timer: unknown;
    let busy = false;
    let again = false;
    const { store, index } = d.jobs();

    const round = async (): Promise<void> => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        do {
          again = false;
          if (stopped || !d.leading()) return;
          await index.ready();
          const now = clock.now();
          const queued = [...index.live.values()]
            .filter((r) => r.state === 'queued' && r.notBefore <= now)
            .sort((a, b) => b.priority - a.priority || a.createdAt - b.createdAt);
          if (queued.length === 0) break;
          const unknown = () => (knownTypes ? queued.filter((r) => !knownTypes!.has(r.type)) : []);
          // The cache may predate a node that just joined: confirm from the leases before refusing.
          if (unknown().length) knownTypes = await liveTypes();
          const unhandled = unknown();
          await Promise.allSettled(unhandled.map((r) => store.apply(r.id, () => ({
            type: 'job.reject', error: `unknown job type '${r.type}': no live node handles it`, at: clock.now(),
          }))));
          const offered = queued.filter((r) => !unhandled.includes(r)).slice(0, defaults.jobsPerAuction);
          if (offered.length === 0) break;
          const awarded = await auction(offered, input.epoch);
          if (awarded === offered.length && queued.length > offered.length) again = true;
        } while (again && !stopped);
      } catch (err) {
        d.log(`placement round failed: ${(err as Error).message}`);
      } finally {
        busy = false;
        if (!stopped) {
          clock.clearTimeout(timer);
          timer = clock.setTimeout(() => void round(), defaults.placeIntervalMs);
        }
      }
    };

    const unlisten = index.onChange(() => void round());
    const unhint = d.transport.onQueued(() => void round());
    void round();
    return () => {
      stopped = true;
      clock.clearTimeout(timer);
      unlisten();
      unhint();
    };
  });

  async function auction(offered: JobRecord[], epoch: number): Promise<number> {
    const offer: Offer = {
      epoch,
      jobs: offered.map((r) => ({ id: r.id, type: r.type, priority: r.priority, lastNode: lastAttempt(r)?.node ?? null })),
    };
    const bids = await d.transport.auction(offer, readyNodes, defaults.bidWindowMs);
    if (!d.leading()) return 0;
    const capacity = new Map(bids.map((b) => [b.node, b.free]));
    const scores = new Map<string, Array<{ node: string; score: number }>>();
    for (const b of bids) for (const x of b.bids) scores.set(x.id, [...(scores.get(x.id) ?? []), { node: b.node, score: x.score }]);
    const awards = new Map<string, string[]>();
    // A bid was made before this round's awards: discount a node by what it already won here.
    const effective = (s: { node: string; score: number }) => s.score - 2 * (awards.get(s.node)?.length ?? 0);
    for (const r of offered) {
      const best = (scores.get(r.id) ?? []).filter((s) => (capacity.get(s.node) ?? 0) > 0).sort((a, b) => effective(b) - effective(a))[0];
      if (!best) continue;
      capacity.set(best.node, capacity.get(best.node)! - 1);
      awards.set(best.node, [...(awards.get(best.node) ?? []), r.id]);
    }
    const { store } = d.jobs();
    let count = 0;
    await Promise.all([...awards].map(async ([node, ids]) => {
      const done = await Promise.all(ids.map((id) => store.apply(id, (c) => (c.state === 'queued' ? { type: 'job.assign', node, at: clock.now() } : null))));
      const assigned = ids.filter((_, i) => done[i]?.changed);
      count += assigned.length;
      if (assigned.length) d.transport.assign(node, assigned);
    }));
    return count;
  }

  return { recover, place };
}
