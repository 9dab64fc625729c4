// The bid scorer's inputs, in one place: what a node knows about itself and
// one offered job when it bids, and how each is scaled into the row a learned
// scorer reads. The trainer, the TypeScript forward pass and the ONNX model
// all use this order and these scales; a model's spec repeats them, and a node
// refuses a model whose spec differs (it falls back to the heuristic).

export type BidFeatures = {
  slots: number;
  freeSlots: number;
  /** Jobs this node already runs. */
  running: number;
  /** How fast this node runs work, relative to 1 (`shoal node --speed`). */
  speed: number;
  /** This node ran the job's last attempt (warm caches, local files). */
  holdsCheckpoint: boolean;
  /** Jobs this node won in the last few auctions (spreads work). */
  recentWins: number;
  priority: number;
  /** Milliseconds since this node last won a job (since it started, if never). */
  idleMs: number;
};

/** Each input of a learned scorer: its name, how the raw value maps to the row, and its upper clip. */
export const features = [
  { name: 'freeFraction', of: (f: BidFeatures) => f.freeSlots / Math.max(1, f.slots), scale: 1, max: 1 },
  { name: 'slots', of: (f: BidFeatures) => f.slots, scale: 16, max: 4 },
  { name: 'speed', of: (f: BidFeatures) => f.speed, scale: 2, max: 4 },
  { name: 'holdsCheckpoint', of: (f: BidFeatures) => (f.holdsCheckpoint ? 1 : 0), scale: 1, max: 1 },
  { name: 'recentWins', of: (f: BidFeatures) => f.recentWins, scale: 10, max: 2 },
  { name: 'priority', of: (f: BidFeatures) => f.priority, scale: 9, max: 1 },
  { name: 'idleSeconds', of: (f: BidFeatures) => f.idleMs / 1000, scale: 30, max: 1 },
] as const;

export const featureCount = features.length;

/** The spec of the inputs as a model file records it (names and scaling, in order). */
export const featureSpec = () => features.map(({ name, scale, max }) => ({ name, scale, max }));

/** Rows of scaled inputs, one per bid, packed for a batch (row-major). */
export function featureRows(rows: BidFeatures[]): Float32Array {
  const out = new Float32Array(rows.length * featureCount);
  rows.forEach((f, i) => {
    features.forEach((x, j) => {
      out[i * featureCount + j] = Math.min(x.max, Math.max(0, x.of(f) / x.scale));
    });
  });
  return out;
}
