// Bid scoring behind one interface: the heuristic (the fallback and the
// baseline) and a learned network, scored in TypeScript here or by ONNX
// Runtime (onnx.scorer.ts). A node scores all its bids for one offer as one
// batch; placement.ts turns scores into bids and awards.
import { type BidFeatures, featureRows } from './features.ts';
import { forward, type Mlp } from './mlp.ts';

export type { BidFeatures };

export interface Scorer {
  readonly name: string;
  /** One score per row (higher wins), in order; async where a runtime is. Not called for a node without a free slot. */
  score(rows: BidFeatures[]): number[] | Promise<number[]>;
}

export const heuristicScorer: Scorer = {
  name: 'heuristic',
  score: (rows) => rows.map((f) => 10 * (f.freeSlots / Math.max(1, f.slots)) + (f.holdsCheckpoint ? 3 : 0) - 0.5 * f.recentWins),
};

/** A learned network scored in TypeScript (the trainer's and the simulation's scorer; the reference for ONNX). */
export function mlpScorer(m: Mlp, name = 'mlp'): Scorer {
  return { name, score: (rows) => Array.from(forward(m, featureRows(rows), rows.length)) };
}
