// A small discrete-event model of a Shoal cluster, for training and judging
// bid scorers fast: heterogeneous nodes (slots, speed), Poisson or bursty
// arrivals, heavy-tailed job sizes, node failures with checkpoints. Placement
// is the real policy code: every node with a free slot scores the queued jobs
// with the scorer (one batch per node), the leader awards with `greedyAward`.
// Pure and seeded: the same workload and scorer give the same episode.
import { type BidFeatures } from '../policies/features.ts';
import { agingBonus, greedyAward, type NodeBid, type OfferedJob } from '../policies/placement.ts';
import { gini } from '../policies/fairness.ts';
import { exp, exponential, ln, rng } from './random.ts';

export type SimNode = { id: string; slots: number; speed: number };

export type Workload = {
  name: string;
  nodes: SimNode[];
  arrivals: 'poisson' | 'bursty';
  /** Jobs per second, on average. */
  rate: number;
  jobs: number;
  /** Mean work per job, in seconds at speed 1 (Pareto α = 1.5, capped at 50× the mean). */
  meanWork: number;
  /** Node failures during the episode (each node down for `downSeconds`, its jobs back to the queue). */
  failures: number;
  downSeconds: number;
  seed: number;
};

export type EpisodeResult = {
  /** Mean of (finish − arrival) / work: 1 is no waiting on a speed-1 node. */
  meanSlowdown: number;
  /** Time to start, p99 (s). */
  waitP99: number;
  meanLatency: number;
  /** Gini of busy time per slot across nodes. */
  gini: number;
  /** What training minimises: mean slowdown + 2 × Gini. */
  loss: number;
};

/** The coefficient of variation of the bursty arrivals (what the comparison framework we studied used). */
export const burstyCv = 8;

/** Inter-arrival gaps (s): exponential, or a two-phase hyperexponential with the same mean and CV `burstyCv`. */
export function arrivalGaps(arrivals: Workload['arrivals'], rate: number, count: number, random: () => number): number[] {
  const next = (r: number) => exponential(random, r);
  const c2 = burstyCv * burstyCv;
  const p = 0.5 * (1 + Math.sqrt((c2 - 1) / (c2 + 1)));
  return Array.from({ length: count }, () => {
    if (arrivals === 'poisson') return next(rate);
    return random() < p ? next(2 * p * rate) : next(2 * (1 - p) * rate);
  });
}

/** Heavy-tailed work: Pareto with α = 1.5 and this mean, capped at 50× the mean. */
export const paretoWork = (mean: number, random: () => number) => Math.min(50 * mean, (mean / 3) * exp(-ln(1 - random()) / 1.5));

type Job = { id: string; arrival: number; work: number; done: number; priority: number; lastNode: string | null; started: number | null };
type Run = { job: Job; node: string; from: number; until: number };

const checkpointEvery = 1; // seconds of work between checkpoints
const migratePenalty = 0.3; // seconds to restore a checkpoint on another node

/** One episode of `w` placed by `score` (one call per bidding node per round); returns its figures. */
export function simulate(w: Workload, score: (rows: BidFeatures[]) => number[]): EpisodeResult {
  const random = rng(w.seed);
  let t = 0;
  const jobs: Job[] = [];
  for (const [i, g] of arrivalGaps(w.arrivals, w.rate, w.jobs, random).entries()) {
    t += g;
    jobs.push({
      id: `j${i}`,
      arrival: t,
      work: paretoWork(w.meanWork, random),
      done: 0,
      priority: random() < 0.2 ? 9 : 5,
      lastNode: null,
      started: null,
    });
  }
  const horizon = t;
  const outages = Array.from(
    { length: w.failures },
    () => ({ node: w.nodes[Math.floor(random() * w.nodes.length)]!.id, at: random() * horizon }),
  )
    .sort((a, b) => a.at - b.at);
  const running = new Map<string, Run[]>(w.nodes.map((x) => [x.id, []]));
  const downUntil = new Map<string, number>();
  const lastWin = new Map<string, number>(w.nodes.map((x) => [x.id, 0]));
  const wins = new Map<string, number[]>(w.nodes.map((x) => [x.id, []]));
  const busy = new Map<string, number>(w.nodes.map((x) => [x.id, 0]));
  const queue: Job[] = [];
  const finished: Array<{ job: Job; at: number }> = [];
  let next = 0;
  let now = 0;

  const place = () => {
    if (queue.length === 0) return;
    queue.sort((a, b) => b.priority - a.priority || a.arrival - b.arrival);
    const offered: OfferedJob[] = queue.slice(0, 64).map((j) => ({ id: j.id, type: 'work', priority: j.priority, lastNode: j.lastNode }));
    const bids: NodeBid[] = [];
    for (const x of w.nodes) {
      const free = x.slots - running.get(x.id)!.length;
      if (free <= 0 || (downUntil.get(x.id) ?? 0) > now) continue;
      const recent = wins.get(x.id)!.filter((at) => now - at < 5);
      wins.set(x.id, recent);
      const idleMs = (now - lastWin.get(x.id)!) * 1000;
      const rows = offered.map((j) => ({
        slots: x.slots,
        freeSlots: free,
        running: x.slots - free,
        speed: x.speed,
        holdsCheckpoint: j.lastNode === x.id,
        recentWins: recent.length,
        priority: j.priority,
        idleMs,
      }));
      const scores = score(rows);
      bids.push({ node: x.id, free, bids: offered.map((j, i) => ({ id: j.id, score: scores[i]! + agingBonus(idleMs) })) });
    }
    for (const [node, ids] of greedyAward(offered, bids)) {
      const x = w.nodes.find((y) => y.id === node)!;
      for (const id of ids) {
        const job = queue.splice(queue.findIndex((j) => j.id === id), 1)[0]!;
        const restore = job.done > 0 && job.lastNode !== node ? migratePenalty : 0;
        job.started ??= now;
        job.lastNode = node;
        running.get(node)!.push({ job, node, from: now + restore, until: now + restore + (job.work - job.done) / x.speed });
        lastWin.set(node, now);
        wins.get(node)!.push(now);
      }
    }
  };

  const fail = (node: string) => {
    const x = w.nodes.find((y) => y.id === node)!;
    for (const r of running.get(node)!) {
      const worked = Math.max(0, now - r.from) * x.speed;
      r.job.done = Math.min(r.job.work, Math.floor((r.job.done + worked) / checkpointEvery) * checkpointEvery);
      busy.set(node, busy.get(node)! + Math.max(0, now - r.from));
      queue.push(r.job);
    }
    running.set(node, []);
    downUntil.set(node, now + w.downSeconds);
    outages.push({ node: '', at: now + w.downSeconds });
    outages.sort((a, b) => a.at - b.at);
  };

  for (;;) {
    const ends = [...running.values()].flat();
    const nextEnd = ends.reduce((m, r) => Math.min(m, r.until), Infinity);
    const nextArrival = jobs[next]?.arrival ?? Infinity;
    const nextOutage = outages[0]?.at ?? Infinity;
    now = Math.min(nextEnd, nextArrival, nextOutage);
    if (now === Infinity) break;
    if (now === nextEnd) {
      for (const [node, rs] of running) {
        for (const r of rs.filter((x) => x.until === now)) {
          rs.splice(rs.indexOf(r), 1);
          busy.set(node, busy.get(node)! + (r.until - r.from));
          finished.push({ job: r.job, at: now });
        }
      }
    } else if (now === nextArrival) {
      queue.push(jobs[next++]!);
    } else {
      const { node } = outages.shift()!;
      if (node !== '') fail(node); // '' marks a node coming back: placement runs then
    }
    place();
  }

  const slowdowns = finished.map((f) => (f.at - f.job.arrival) / f.job.work);
  const waits = finished.map((f) => f.job.started! - f.job.arrival).sort((a, b) => a - b);
  const meanSlowdown = slowdowns.reduce((a, b) => a + b, 0) / Math.max(1, slowdowns.length);
  const g = gini(w.nodes.map((x) => busy.get(x.id)! / x.slots));
  return {
    meanSlowdown,
    waitP99: waits[Math.min(waits.length - 1, Math.ceil(0.99 * waits.length) - 1)] ?? 0,
    meanLatency: finished.reduce((a, f) => a + f.at - f.job.arrival, 0) / Math.max(1, finished.length),
    gini: g,
    loss: meanSlowdown + 2 * g,
  };
}
