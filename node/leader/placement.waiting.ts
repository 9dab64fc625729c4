// Jobs the placement round cannot simply award: those no live node can take
// (their record says why, and they fail after their pending timeout, if any),
// and urgent ones that take the slot of a running job of lower priority
// (preemption). Part of the leader's placement loop (placement.loop.ts).
import type { JobRecord } from '../../api/contract.ts';
import type { NodeBid } from '../../policies/placement.ts';
import { chooseVictim } from '../../policies/preemption.ts';
import { addUsage, fitsFree, pendingReason, satisfies, usageOf } from '../../policies/requirements.ts';
import { defaults } from '../../base/defaults.ts';
import { capacityOf } from './cluster.cache.ts';
import type { Placer } from './deps.ts';

/**
 * For each queued job: whether some live node could ever run it — one that handles its type (the only
 * nodes that load a module may be restarting) and, with requirements, one that satisfies them. Where none
 * can, its record gets the reason, and it fails once it has waited its `pendingTimeoutMs` (for a missing
 * type, `typeMissingTimeoutMs` when unset, so a mistyped type still ends with a clear error); where one
 * can again, the reason goes. A type at its concurrency limit waits too (never failing for it): the jobs
 * returned take their places in `room` (`typeRoom`), so a caller placing more after them sees what is left.
 * Returns the jobs some live node can take, in the same order.
 */
export async function settlePending(placer: Placer, queued: JobRecord[], room = typeRoom(placer)): Promise<JobRecord[]> {
  const { deps, cluster, clock } = placer;
  /** Why no live node can take `r` (null: one can), how long it may wait (null: for ever), and the error after. */
  const waitOf = (r: JobRecord) => {
    const types = cluster.types;
    if (types && !types.has(r.type)) {
      const handled = `live nodes handle: ${[...types].sort().join(', ') || 'none'}`;
      const limitMs = r.pendingTimeoutMs ?? defaults.typeMissingTimeoutMs;
      return {
        reason: `no live node handles type '${r.type}' (${handled})`,
        limitMs,
        error: `unknown job type '${r.type}': no live node handled it within ${limitMs} ms (${handled})`,
      };
    }
    const reason = r.requires ? pendingReason(r.requires, cluster.nodes.filter((n) => n.types.includes(r.type)).map(capacityOf)) : null;
    if (reason === null) return null;
    return { reason, limitMs: r.pendingTimeoutMs, error: `could not be placed within ${r.pendingTimeoutMs} ms: ${reason}` };
  };
  // The cache may predate a node that joined: confirm from the leases (at most every `pendingRecheckMs`) before saying no.
  if (queued.some((r) => waitOf(r) !== null)) await cluster.fresh(defaults.pendingRecheckMs);
  const { store } = deps.jobs();
  const now = clock.now();
  const writes: Array<Promise<unknown>> = [];
  const placeable: JobRecord[] = [];
  const limits = cluster.limits;
  for (const r of queued) {
    const wait = waitOf(r) ?? atLimit(r.type, room, limits);
    if (wait === null) placeable.push(r);
    const since = r.pendingSince ?? now;
    if (wait !== null && wait.limitMs !== null && now - since >= wait.limitMs) {
      const { error } = wait;
      writes.push(store.apply(r.id, (c) => (c.state === 'queued' ? { type: 'job.reject', error, at: clock.now() } : null)));
    } else if ((wait?.reason ?? null) !== r.pendingReason) {
      const reason = wait?.reason ?? null;
      writes.push(store.apply(r.id, (c) => (c.state === 'queued' ? { type: 'job.pending', reason, at: clock.now() } : null)));
    }
  }
  const failed = (await Promise.allSettled(writes)).filter((x) => x.status === 'rejected').length;
  if (failed) deps.log(`placement: ${failed} pending-reason write(s) failed; the next round retries`);
  return placeable;
}

/**
 * Room left under each limited job type's concurrency limit (`defineJob` concurrency, from the nodes' adverts):
 * its limit less its jobs assigned or running now. Types without a limit are absent.
 */
export function typeRoom(placer: Placer): Map<string, number> {
  const room = new Map(placer.cluster.limits);
  if (room.size === 0) return room;
  for (const r of placer.deps.jobs().index.live.values()) {
    if ((r.state === 'assigned' || r.state === 'running') && room.has(r.type)) room.set(r.type, room.get(r.type)! - 1);
  }
  return room;
}

/** Takes one place under `type`'s limit (null: it may be placed), or says why it waits: never a reason to fail it. */
export function atLimit(type: string, room: Map<string, number>, limits: Map<string, number>) {
  const left = room.get(type);
  if (left === undefined) return null;
  if (left > 0) {
    room.set(type, left - 1);
    return null;
  }
  return { reason: `type '${type}' is at its concurrency limit (${limits.get(type)} assigned or running)`, limitMs: null, error: '' };
}

/**
 * Preemption: each job the round could not place (in offer order) takes the
 * slot of the running job `chooseVictim` picks, on a ready node that can run
 * it. The job is assigned to that node at once, with word to yield the victim:
 * the node starts it in the victim's slot while the victim checkpoints (its
 * grace) and goes back to the queue. Returns how many were placed so.
 */
export async function preempt(placer: Placer, unplaced: JobRecord[], bids: NodeBid[], round: string): Promise<number> {
  const { deps, cluster, clock } = placer;
  const rules = deps.preemption;
  if (!rules.enabled || unplaced.length === 0) return 0;
  const { store, index } = deps.jobs();
  // Victims already told to yield stay excluded until their record moves on.
  for (const [id, attempt] of placer.yielding) {
    const r = index.live.get(id);
    if (!r || r.state !== 'running' || r.attempt !== attempt) placer.yielding.delete(id);
  }
  const running = [...index.live.values()].filter((r) => r.state === 'running' && r.owner !== null && !placer.yielding.has(r.id));
  if (running.length === 0) return 0;
  const nodes = new Map(cluster.ready.map((n) => [n.id, n]));
  const freeUsage = new Map(bids.map((b) => [b.node, b.freeUsage]));
  const now = clock.now();
  let placed = 0;
  for (const urgent of unplaced) {
    const fits = (v: JobRecord) => {
      const n = nodes.get(v.owner!);
      if (!n || !n.types.includes(urgent.type) || !satisfies(urgent.requires, capacityOf(n))) return false;
      const free = freeUsage.get(n.id);
      return !free || fitsFree(urgent.requires, addUsage(free, usageOf(v.requires)));
    };
    const victim = chooseVictim(urgent, running, now, rules, fits);
    if (!victim) continue;
    running.splice(running.indexOf(victim), 1);
    const node = victim.owner!;
    const done = await store.apply(
      urgent.id,
      // Naming the node's lease term, as every assignment does: a later process under the same id refuses it.
      (
        c,
      ) => (c.state === 'queued' ? { type: 'job.assign', node, at: clock.now(), round, nodeEpoch: nodes.get(node)?.epoch ?? null } : null),
      index.versioned(urgent.id),
    );
    if (!done?.changed || !deps.leading()) continue;
    placer.yielding.set(victim.id, victim.attempt);
    if (!deps.policy.asks) placer.awarded.set(urgent.id, node);
    deps.transport.assign(node, [{ value: done.record, revision: done.revision }], {
      preempt: [{ id: victim.id, attempt: victim.attempt }],
      graceMs: rules.graceMs,
    });
    deps.log(`job ${urgent.id} (priority ${urgent.priority}) preempts ${victim.id} (priority ${victim.priority}) on ${node}`);
    placed++;
  }
  return placed;
}
