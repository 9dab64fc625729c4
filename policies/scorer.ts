// Bid scoring behind one interface: the heuristic here is the fallback and
// the baseline; an ONNX-trained scorer comes later behind the same shape
// (placement.ts turns scores into bids and awards).

export type BidFeatures = {
  slots: number;
  freeSlots: number;
  /** Jobs this node already runs. */
  running: number;
  /** This node ran the job's last attempt (warm caches, local files). */
  holdsCheckpoint: boolean;
  /** Jobs this node won in the last few auctions (spreads work). */
  recentWins: number;
  priority: number;
};

export interface Scorer {
  readonly name: string;
  /** Higher wins; not called for a node without a free slot. */
  score(f: BidFeatures): number;
}

export const heuristicScorer: Scorer = {
  name: 'heuristic',
  score: (f) => 10 * (f.freeSlots / Math.max(1, f.slots)) + (f.holdsCheckpoint ? 3 : 0) - 0.5 * f.recentWins,
};
