// Dispatch placement, pure: the dispatcher (the leader) places queued jobs
// itself, from what it knows of the nodes, with the same scorer the nodes bid
// with in an auction. Per job it scores a few sampled candidates (two random
// nodes with credit that can take it, plus the node that ran its last
// attempt), so placing a job costs the same at 3 nodes and at 100.
import type { Requirements } from '../api/contract.ts';
import { agingBonus, awardDiscount, type OfferedJob } from './placement.ts';
import { addUsage, canRunNow, type NodeCapacity, type Usage, usageOf } from './requirements.ts';
import type { BidFeatures, Scorer } from './scorer.ts';

/** A ready node as the dispatcher sees it now. */
export type NodeState = {
  id: string;
  slots: number;
  /** How many more jobs it may be given now: its slots and prefetch less what it holds. */
  credit: number;
  /** Jobs it holds now (assigned or running). */
  running: number;
  speed: number;
  types: ReadonlySet<string>;
  capacity: NodeCapacity;
  /** Memory and GPUs not held by its jobs. */
  freeUsage: Usage;
  /** Jobs it was given in the last few seconds, and ms since it was last given one. */
  recentWins: number;
  idleMs: number;
};

/** Random candidates per job, besides the node that ran its last attempt. */
export const sampledCandidates = 2;

function canTake(n: NodeState, type: string, requires: Requirements | null | undefined): boolean {
  return n.credit > 0 && n.types.has(type) && canRunNow(requires, n.capacity, n.freeUsage);
}

/** Up to `sampledCandidates` random nodes that can take the job now, plus its last node if it can. */
export function sampleCandidates(
  job: OfferedJob,
  open: NodeState[],
  byId: ReadonlyMap<string, NodeState>,
  random: () => number,
): NodeState[] {
  const out: NodeState[] = [];
  const last = job.lastNode === null ? undefined : byId.get(job.lastNode);
  if (last && canTake(last, job.type, job.requires)) out.push(last);
  if (open.length <= sampledCandidates + out.length) {
    for (const n of open) if (!out.includes(n) && canTake(n, job.type, job.requires)) out.push(n);
    return out;
  }
  // A few random probes: enough to find takers among many nodes without looking at all of them.
  for (let tries = 0; tries < 4 * sampledCandidates && out.length < sampledCandidates + (last ? 1 : 0); tries++) {
    const n = open[Math.floor(random() * open.length)]!;
    if (!out.includes(n) && canTake(n, job.type, job.requires)) out.push(n);
  }
  return out;
}

/**
 * Place `jobs` (in offer order) on `nodes`: each job's sampled candidates are
 * scored together (one scorer batch for the round), then each job goes to its
 * best candidate that still has credit, a win counting `awardDiscount` against
 * that node's later scores in the round. Returns job id → node id.
 */
export async function dispatchRound(
  jobs: OfferedJob[],
  nodes: NodeState[],
  scorer: Scorer,
  random: () => number,
): Promise<Map<string, string>> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const open = nodes.filter((n) => n.credit > 0);
  const candidates = jobs.map((j) => sampleCandidates(j, open, byId, random));
  const rows: BidFeatures[] = [];
  const owners: Array<{ job: number; node: NodeState }> = [];
  candidates.forEach((cs, i) =>
    cs.forEach((n) => {
      owners.push({ job: i, node: n });
      rows.push({
        slots: n.slots,
        freeSlots: n.credit,
        running: n.running,
        speed: n.speed,
        holdsCheckpoint: jobs[i]!.lastNode === n.id,
        recentWins: n.recentWins,
        priority: jobs[i]!.priority,
        idleMs: n.idleMs,
      });
    })
  );
  const scores = rows.length === 0 ? [] : await scorer.score(rows);
  const byJob = new Map<number, Array<{ node: NodeState; score: number }>>();
  owners.forEach((o, k) =>
    byJob.set(o.job, [...(byJob.get(o.job) ?? []), { node: o.node, score: scores[k]! + agingBonus(o.node.idleMs) }])
  );
  const won = new Map<string, number>();
  const out = new Map<string, string>();
  jobs.forEach((job, i) => {
    let best: { node: NodeState; score: number } | null = null;
    for (const c of byJob.get(i) ?? []) {
      if (!canTake(c.node, job.type, job.requires)) continue;
      const score = c.score - awardDiscount * (won.get(c.node.id) ?? 0);
      if (!best || score > best.score) best = { node: c.node, score };
    }
    if (!best) return;
    const n = best.node;
    n.credit--;
    n.running++;
    n.freeUsage = addUsage(n.freeUsage, usageOf(job.requires), -1);
    won.set(n.id, (won.get(n.id) ?? 0) + 1);
    out.set(job.id, n.id);
  });
  return out;
}
