// The leader's placement loop: offer queued jobs (policies/placement.ts orders
// them), collect bids, award them by the policy, write each assignment by CAS
// and tell the winners. Runs while the coordinator is `placing`; rounds run when
// the job index changes, when jobs are queued, and on a timer.
import { fromCallback } from 'xstate';
import type { CoordinatorEvent, DutyInput } from '../../machines/coordinator.machine.ts';
import { lastAttempt } from '../../machines/job.machine.ts';
import type { JobRecord } from '../../api/contract.ts';
import { effectivePriority, type NodeBid, type OfferedJob, offerOrder } from '../../policies/placement.ts';
import { defaults } from '../../base/defaults.ts';
import { realClock } from '../../base/time.ts';
import { capacityOf, type ClusterCache } from './cluster.cache.ts';
import { preempt, settlePending } from './placement.waiting.ts';
import { addUsage, noUsage, satisfies, type Usage, usageOf } from '../../policies/requirements.ts';
import type { DutyDeps, Placer } from './deps.ts';

/** Pull: publish the queued jobs not yet on the work queue (by job and attempt); the nodes take them from there. */
async function enqueue(placer: Placer, queued: JobRecord[]): Promise<void> {
  const fresh = queued.filter((r) => !placer.enqueued.has(`${r.id}:${r.attempt}`)).map((r) => ({ id: r.id, attempt: r.attempt }));
  if (fresh.length === 0) return;
  await placer.deps.transport.enqueue!(fresh);
  for (const j of fresh) placer.enqueued.add(`${j.id}:${j.attempt}`);
  if (placer.enqueued.size > 100_000) placer.enqueued.clear(); // the stream's duplicate window catches what this forgets
}

/**
 * Without an auction, the leader's own view stands in for the bids: each ready
 * node's slots (its advert) less its load (the jobs its index shows assigned to
 * or running there, and the assignments written since that it does not show yet).
 */
function ownView({ deps, cluster, awarded }: Placer, jobs: OfferedJob[]): NodeBid[] {
  const { index } = deps.jobs();
  const load = new Map<string, { slots: number; usage: Usage }>();
  const count = (node: string | null, r: JobRecord) => {
    if (node === null) return;
    const l = load.get(node) ?? { slots: 0, usage: noUsage };
    load.set(node, { slots: l.slots + 1, usage: addUsage(l.usage, usageOf(r.requires)) });
  };
  for (const r of index.live.values()) if (r.state === 'assigned' || r.state === 'running') count(r.owner, r);
  for (const [id, node] of awarded) {
    const r = index.live.get(id);
    if (r?.state === 'queued') count(node, r);
    else awarded.delete(id); // the index shows it (or it ended): counted above, if at all
  }
  return cluster.ready.map((x) => {
    const l = load.get(x.id) ?? { slots: 0, usage: noUsage };
    const cap = capacityOf(x);
    return {
      node: x.id,
      free: Math.max(0, x.slots - l.slots),
      freeUsage: addUsage(cap, l.usage, -1),
      bids: jobs.filter((j) => x.types.includes(j.type) && satisfies(j.requires, cap)).map((j) => ({ id: j.id, score: 0 })),
    };
  });
}

/** One placement round: offer and collect bids (or, without an auction, the leader's own view), award by the policy, assign by CAS, preempt for what is left; returns how many were assigned. */
async function auction(placer: Placer, offered: JobRecord[], epoch: number): Promise<number> {
  const { deps, cluster, clock } = placer;
  const began = clock.mono();
  const now = clock.now();
  const jobs = offered.map((r) => ({
    id: r.id,
    type: r.type,
    priority: effectivePriority(r, now),
    lastNode: lastAttempt(r)?.node ?? null,
    ...(r.requires ? { requires: r.requires } : {}),
  }));
  const bids = deps.policy.asks
    ? await deps.transport.auction({ epoch, jobs }, cluster.readyNodes, defaults.bidWindowMs)
    : ownView(placer, jobs);
  if (!deps.leading()) return 0;
  const { store, index } = deps.jobs();
  const round = `${deps.self.instance}:${++placer.rounds}`;
  const epochs = new Map(cluster.ready.map((n) => [n.id, n.epoch]));
  let count = 0;
  const placed = new Set<string>();
  await Promise.all([...deps.policy.award(jobs, bids)].map(async ([node, ids]) => {
    // CAS on the revision the index holds (no read first); a stale one is re-read and re-decided.
    const done = await Promise.all(
      ids.map((id) =>
        store.apply(
          id,
          (c) => (c.state === 'queued' ? { type: 'job.assign', node, at: clock.now(), round, nodeEpoch: epochs.get(node) ?? null } : null),
          index.versioned(id),
        )
      ),
    );
    const assigned = done.filter((x) => x?.changed).map((x) => ({ value: x!.record, revision: x!.revision }));
    if (!deps.policy.asks) { for (const a of assigned) placer.awarded.set(a.value.id, node); }
    count += assigned.length;
    for (const a of assigned) placed.add(a.value.id);
    if (assigned.length) deps.transport.assign(node, assigned);
  }));
  count += await preempt(placer, offered.filter((r) => !placed.has(r.id)), bids, round);
  deps.onAuction?.(clock.mono() - began, offered.length, count);
  return count;
}

/** Auctions until nothing placeable is left (or every offer found a taker but more wait); returns whether to go again at once. */
async function placeQueued(placer: Placer, epoch: number): Promise<boolean> {
  const { index } = placer.deps.jobs();
  await index.ready();
  const queued = offerOrder(index.live.values(), placer.clock.now());
  if (queued.length === 0) return false;
  const placeable = await settlePending(placer, queued);
  if (placer.deps.policy.pulls) {
    await enqueue(placer, placeable);
    return false;
  }
  const offered = placeable.slice(0, defaults.jobsPerAuction);
  if (offered.length === 0) return false;
  const awarded = await auction(placer, offered, epoch);
  return awarded === offered.length && queued.length > offered.length;
}

export function placementLoop(deps: DutyDeps, cluster: ClusterCache) {
  const placer: Placer = {
    deps,
    cluster,
    clock: deps.clock ?? realClock,
    awarded: new Map(),
    enqueued: new Set(),
    yielding: new Map(),
    rounds: 0,
  };
  const { clock } = placer;
  return fromCallback<CoordinatorEvent, DutyInput>(({ input }) => {
    let stopped = false;
    let timer: unknown;
    let busy = false;
    let again = false;
    const { index } = deps.jobs();

    /** Rounds until nothing is left to offer; a round asked for meanwhile runs after this one. */
    const round = async (): Promise<void> => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        do {
          again = false;
          if (stopped || !deps.leading()) return;
          if (await placeQueued(placer, input.epoch)) again = true;
        } while (again && !stopped);
      } catch (err) {
        deps.log(`placement round failed: ${(err as Error).message}`);
      } finally {
        busy = false;
        if (!stopped) {
          clock.clearTimeout(timer);
          timer = clock.setTimeout(() => void round(), defaults.placeIntervalMs);
        }
      }
    };

    const unlisten = index.onChange(() => void round());
    const unhint = deps.transport.onQueued(() => void round());
    void round();
    return () => {
      stopped = true;
      clock.clearTimeout(timer);
      unlisten();
      unhint();
    };
  });
}
