// Training the learned bid scorer: the cross-entropy method over the MLP's
// parameters, each candidate judged by its mean loss on simulated episodes
// (cluster.sim.ts) that mix homogeneous and heterogeneous nodes, Poisson and
// bursty arrivals, heavy-tailed work and node failures. Every candidate of an
// iteration sees the same episodes; everything follows from the seed.
import { featureCount } from '../policies/features.ts';
import { type Mlp, mlpFrom, paramCount } from '../policies/mlp.ts';
import { normal, rng } from './random.ts';
import { heuristicScorer, mlpScorer, type Scorer } from '../policies/scorer.ts';
import { type SimNode, simulate, type Workload } from './cluster.sim.ts';

export type TrainOptions = {
  seed: number;
  hidden: number;
  iterations: number;
  population: number;
  elite: number;
  /** Episodes each candidate is judged on, per iteration. */
  episodes: number;
  jobsPerEpisode: number;
  onIteration?: (i: number, best: number, mean: number) => void;
};

export const defaultTraining: Omit<TrainOptions, 'seed' | 'onIteration'> = {
  hidden: 8,
  iterations: 30,
  population: 32,
  elite: 6,
  episodes: 4,
  jobsPerEpisode: 200,
};

export type TrainResult = {
  mlp: Mlp;
  /** Mean loss of the trained scorer, the heuristic and random networks on held-out episodes. */
  loss: number;
  heuristicLoss: number;
  randomLoss: number;
  /** The same per workload shape (homogeneous/heterogeneous × poisson/bursty). */
  byWorkload: Record<string, { model: number; heuristic: number; random: number }>;
  /** Best candidate's loss per iteration. */
  curve: number[];
  /** Episodes simulated in all. */
  episodes: number;
};

/** Four node shapes: homogeneous (4 × 4 slots at speed 1) or heterogeneous (2/4/4/8 slots, speeds 0.5–2, shuffled by the seed). */
export function clusterOf(kind: 'homogeneous' | 'heterogeneous', random: () => number): SimNode[] {
  if (kind === 'homogeneous') return [1, 2, 3, 4].map((i) => ({ id: `n${i}`, slots: 4, speed: 1 }));
  const speeds = [0.5, 1, 1, 2];
  for (let i = speeds.length - 1; i > 0; i--) { // Fisher–Yates: a sort with a random comparator differs between engines
    const j = Math.floor(random() * (i + 1));
    [speeds[i], speeds[j]] = [speeds[j]!, speeds[i]!];
  }
  return [2, 4, 4, 8].map((slots, i) => ({ id: `n${i + 1}`, slots, speed: speeds[i]! }));
}

/** The k-th training or evaluation episode of a seed: shapes and arrivals cycle, loads ~70 % of capacity. */
export function episode(seed: number, k: number, jobs: number): Workload {
  const random = rng(seed * 7919 + k);
  const kind = k % 2 === 0 ? 'homogeneous' : 'heterogeneous';
  const nodes = clusterOf(kind, random);
  const capacity = nodes.reduce((a, x) => a + x.slots * x.speed, 0);
  const meanWork = 1;
  return {
    name: `${kind}-${Math.floor(k / 2) % 2 === 0 ? 'poisson' : 'bursty'}`,
    nodes,
    arrivals: Math.floor(k / 2) % 2 === 0 ? 'poisson' : 'bursty',
    rate: (0.7 * capacity) / meanWork,
    jobs,
    meanWork,
    failures: 1,
    downSeconds: 5,
    seed: Math.floor(random() * 2 ** 31),
  };
}

export function meanLoss(scorer: Scorer, workloads: Workload[]): number {
  const score = (rows: Parameters<Scorer['score']>[0]) => scorer.score(rows) as number[];
  return workloads.reduce((a, w) => a + simulate(w, score).loss, 0) / workloads.length;
}

/** Train from `o.seed`; the same options give the same network, bit for bit. */
export function train(options: TrainOptions): TrainResult {
  const random = rng(options.seed);
  const gauss = normal(random);
  const dims = paramCount(featureCount, options.hidden);
  const mean = Array.from({ length: dims }, () => 0.3 * gauss());
  const std = Array.from({ length: dims }, () => 0.5);
  const curve: number[] = [];
  let episodes = 0;
  for (let it = 0; it < options.iterations; it++) {
    const work = Array.from({ length: options.episodes }, (_, k) => episode(options.seed + 1 + it, k, options.jobsPerEpisode));
    const scored = Array.from({ length: options.population }, () => {
      const theta = mean.map((m, d) => m + std[d]! * gauss());
      episodes += work.length;
      return { theta, loss: meanLoss(mlpScorer(mlpFrom(theta, featureCount, options.hidden)), work) };
    }).sort((a, b) => a.loss - b.loss);
    const elite = scored.slice(0, options.elite);
    for (let d = 0; d < dims; d++) {
      const xs = elite.map((e) => e.theta[d]!);
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      mean[d] = m;
      // A floor on the spread keeps the search from collapsing early.
      std[d] = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length) + 0.02;
    }
    curve.push(scored[0]!.loss);
    options.onIteration?.(it + 1, scored[0]!.loss, scored.reduce((a, s) => a + s.loss, 0) / scored.length);
  }
  const mlp = mlpFrom(mean, featureCount, options.hidden);
  // Held out: another seed's episodes, never seen in training, 8 of each workload shape.
  const heldOut = Array.from({ length: 32 }, (_, k) => episode(options.seed + 100_003, k, options.jobsPerEpisode));
  const randomNet = mlpFrom(Array.from({ length: dims }, () => 0.5 * gauss()), featureCount, options.hidden);
  const scorers = { model: mlpScorer(mlp), heuristic: heuristicScorer, random: mlpScorer(randomNet) };
  const byWorkload: TrainResult['byWorkload'] = {};
  for (const name of [...new Set(heldOut.map((w) => w.name))]) {
    const ws = heldOut.filter((w) => w.name === name);
    byWorkload[name] = {
      model: meanLoss(scorers.model, ws),
      heuristic: meanLoss(scorers.heuristic, ws),
      random: meanLoss(scorers.random, ws),
    };
  }
  episodes += 3 * heldOut.length;
  const overall = (k: 'model' | 'heuristic' | 'random') =>
    Object.values(byWorkload).reduce((a, x) => a + x[k], 0) / Object.keys(byWorkload).length;
  return { mlp, loss: overall('model'), heuristicLoss: overall('heuristic'), randomLoss: overall('random'), byWorkload, curve, episodes };
}
