// Placement as a policy: which queued jobs are offered first, how a node bids
// for an offer (its scorer), and how the leader awards the bids. The leader's
// and the nodes' wiring (node/) calls these pure functions; other strategies
// (centralized, pull, a learned scorer) plug in behind the same shape.
import type { Requirements } from '../api/contract.ts';
import type { JobRecord } from '../api/contract.ts';
import { addUsage, canRunNow, fitsFree, type NodeCapacity, nodeCapacity, type Usage, usageOf } from './requirements.ts';
import { type BidFeatures, heuristicScorer, type Scorer } from './scorer.ts';

/** A job as the leader offers it. */
export type OfferedJob = { id: string; type: string; priority: number; lastNode: string | null; requires?: Requirements | null };

/**
 * A node's answer to an offer: its free compute slots, the memory and GPUs it
 * has free (absent: no limit), and a score per job it can take.
 */
export type NodeBid = { node: string; free: number; freeUsage?: Usage; bids: Array<{ id: string; score: number }> };

/** What a node knows about itself when it bids. */
export type BidderState = {
  nodeId: string;
  slots: number;
  free: number;
  running: number;
  /** Relative speed of this node's work (1: nominal). */
  speed: number;
  /** Jobs it won recently (spreads work). */
  recentWins: number;
  /** Milliseconds since it last won a job (since it started, if never). */
  idleMs: number;
  handles: (type: string) => boolean;
  /** What it offers in total (labels, memory, GPUs) and what of that is free now (absent: no labels, no limits). */
  capacity?: NodeCapacity;
  freeUsage?: Usage;
};

/** Whether a node may bid for the job at all: it handles the type, meets the requirements, and has the resources free now. */
export function canTake(j: OfferedJob, self: BidderState): boolean {
  return self.handles(j.type) && canRunNow(j.requires, self.capacity ?? nodeCapacity({}), self.freeUsage);
}

/**
 * Fairness for nodes: a node that has not won for a while adds this to every
 * bid, growing 0.5 per idle second up to 5 (reached after 10 s), whatever its
 * scorer says; half the heuristic's free-slot range, so a long-idle node
 * overtakes a busier one but a full node (which does not bid) never wins.
 */
export function agingBonus(idleMs: number): number {
  return Math.min(agingBonusMax, (idleMs / 1000) * 0.5);
}
export const agingBonusMax = 5;

export interface PlacementPolicy {
  readonly name: string;
  /**
   * Whether the leader asks the nodes (an auction: offer, bids, award) or
   * decides alone from its own view (then `award` gets one bid per ready node,
   * each job scored 0, with the free slots the leader counts for it).
   */
  readonly asks: boolean;
  /** The nodes pull queued jobs from a work queue (the leader only publishes them there; no award). */
  readonly pulls?: boolean;
  /** The leader places jobs itself, scoring sampled candidates with this scorer (policies/dispatch.ts); no offers, no bids. */
  readonly dispatches?: Scorer;
  /** Node side: a score per offered job this node can run (none without a free slot); async where the scorer is. */
  bid(jobs: OfferedJob[], self: BidderState): NodeBid['bids'] | Promise<NodeBid['bids']>;
  /** Leader side: which node gets which jobs, given the bids (node → job ids, in offer order). */
  award(offered: OfferedJob[], bids: NodeBid[]): Map<string, string[]>;
}

/**
 * Fairness for jobs: a queued job's priority counts one level higher for every
 * `jobAgingStepMs` it has waited since it was submitted, up to the top (9).
 * So a job waits at most (9 − priority) × 10 s before only older jobs go
 * first: none starves behind a stream of higher-priority ones. A delayed job
 * (never assigned yet, `notBefore` ahead of its submit) waits from when it is due.
 */
export const jobAgingStepMs = 10_000;
export const topPriority = 9;

export function effectivePriority(
  r: Pick<JobRecord, 'priority' | 'createdAt'> & Partial<Pick<JobRecord, 'notBefore' | 'attempt'>>,
  now: number,
): number {
  const since = r.attempt === 0 && r.notBefore !== undefined ? Math.max(r.createdAt, r.notBefore) : r.createdAt;
  return Math.max(r.priority, Math.min(topPriority, r.priority + Math.floor(Math.max(0, now - since) / jobAgingStepMs)));
}

/** Queued jobs in the order they are offered: highest effective priority, then oldest; none before its retry backoff ends. */
export function offerOrder(records: Iterable<JobRecord>, now: number): JobRecord[] {
  return [...records].filter((r) => r.state === 'queued' && r.notBefore <= now).sort((a, b) =>
    effectivePriority(b, now) - effectivePriority(a, now) || a.createdAt - b.createdAt
  );
}

/** How much one award in this round lowers a node's later bids in the same round (its bids predate it). */
export const awardDiscount = 2;

/**
 * Greedy award: jobs in offer order, each to the highest bid among nodes with
 * a free slot left, where a bid counts `awardDiscount` less for every job its
 * node already won in this round.
 */
export function greedyAward(offered: OfferedJob[], bids: NodeBid[]): Map<string, string[]> {
  const room = new Room(bids);
  const scores = new Map<string, Array<{ node: string; score: number }>>();
  for (const b of bids) for (const x of b.bids) scores.set(x.id, [...(scores.get(x.id) ?? []), { node: b.node, score: x.score }]);
  const effective = (s: { node: string; score: number }) => s.score - awardDiscount * (room.awards.get(s.node)?.length ?? 0);
  for (const job of offered) {
    const best = (scores.get(job.id) ?? []).filter((s) => room.fits(s.node, job)).sort((a, b) => effective(b) - effective(a))[0];
    if (best) room.take(best.node, job);
  }
  return room.awards;
}

/** What each bidding node has left while one round's awards are made: slots, memory and GPUs. */
class Room {
  readonly awards = new Map<string, string[]>();
  readonly #free = new Map<string, { slots: number; usage: Usage | undefined }>();
  constructor(bids: NodeBid[]) {
    for (const b of bids) this.#free.set(b.node, { slots: b.free, usage: b.freeUsage && { ...b.freeUsage } });
  }
  slots(node: string): number {
    return this.#free.get(node)?.slots ?? 0;
  }
  fits(node: string, job: OfferedJob): boolean {
    const f = this.#free.get(node);
    return !!f && f.slots > 0 && (!f.usage || fitsFree(job.requires, f.usage));
  }
  take(node: string, job: OfferedJob): void {
    const f = this.#free.get(node)!;
    f.slots--;
    if (f.usage) f.usage = addUsage(f.usage, usageOf(job.requires), -1);
    this.awards.set(node, [...(this.awards.get(node) ?? []), job.id]);
  }
}

/** The auction: nodes score each job they can run with `scorer` (one batch per offer), plus the aging bonus; the leader awards greedily. */
export function auctionPolicy(scorer: Scorer = heuristicScorer): PlacementPolicy {
  return {
    name: `auction+${scorer.name}`,
    bid: (jobs, self) => {
      const mine = self.free <= 0 ? [] : jobs.filter((j) => canTake(j, self));
      if (mine.length === 0) return [];
      const rows: BidFeatures[] = mine.map((j) => ({
        slots: self.slots,
        freeSlots: self.free,
        running: self.running,
        speed: self.speed,
        holdsCheckpoint: j.lastNode === self.nodeId,
        recentWins: self.recentWins,
        priority: j.priority,
        idleMs: self.idleMs,
      }));
      const bonus = agingBonus(self.idleMs);
      const bids = (scores: number[]) => mine.map((j, i) => ({ id: j.id, score: scores[i]! + bonus }));
      const scores = scorer.score(rows);
      return Array.isArray(scores) ? bids(scores) : scores.then(bids);
    },
    award: greedyAward,
    asks: true,
  };
}

/**
 * Each job, in offer order, to the node with the most free slots left (ties: the
 * node listed first); a node without a free slot gets nothing.
 */
export function leastLoadedAward(offered: OfferedJob[], bids: NodeBid[]): Map<string, string[]> {
  const room = new Room(bids);
  const takers = new Map<string, string[]>();
  for (const b of bids) for (const x of b.bids) takers.set(x.id, [...(takers.get(x.id) ?? []), b.node]);
  for (const job of offered) {
    let best: string | null = null;
    for (const node of takers.get(job.id) ?? []) {
      if (room.fits(node, job) && (best === null || room.slots(node) > room.slots(best))) best = node;
    }
    if (best !== null) room.take(best, job);
  }
  return room.awards;
}

/** Centralized placement (the baseline the auction is measured against): no bids, the leader assigns each job to the least-loaded node. */
export function centralizedPolicy(): PlacementPolicy {
  return { name: 'centralized', asks: false, bid: () => [], award: leastLoadedAward };
}

/** Pull (the work-queue baseline): the leader publishes each queued job once per attempt, nodes with free slots take them. */
export function pullPolicy(): PlacementPolicy {
  return { name: 'pull', asks: false, pulls: true, bid: () => [], award: () => new Map() };
}

/** Dispatch (the default): the leader holds the job and node tables and places each job itself with `scorer`. */
export function dispatchPolicy(scorer: Scorer = heuristicScorer): PlacementPolicy {
  return { name: `dispatch+${scorer.name}`, asks: false, dispatches: scorer, bid: () => [], award: () => new Map() };
}

export const placementStrategies = ['dispatch', 'auction', 'centralized', 'pull'] as const;
export type PlacementStrategy = typeof placementStrategies[number];

export function placementPolicy(strategy: PlacementStrategy, scorer: Scorer = heuristicScorer): PlacementPolicy {
  if (strategy === 'dispatch') return dispatchPolicy(scorer);
  if (strategy === 'centralized') return centralizedPolicy();
  if (strategy === 'pull') return pullPolicy();
  return auctionPolicy(scorer);
}
