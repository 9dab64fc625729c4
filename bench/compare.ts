// `shoal bench compare`: the same workloads under each placement strategy —
// auction+onnx (the shipped learned scorer), auction+heuristic, centralized
// (least-loaded, no bids) and pull (nodes take jobs from a JetStream work
// queue) — on homogeneous and heterogeneous nodes (slots and a speed factor
// that scales sleep-style work), with steady Poisson and bursty (CV 8)
// arrivals. Every strategy gets the same seeded job sequence.
import type { NatsConnection } from '@nats-io/transport-node';
import type { JobRecord } from '../api/contract.ts';
import { arrivalGaps, burstyCv, paretoWork } from '../training/cluster.sim.ts';
import { gini } from '../policies/fairness.ts';
import { featureRows } from '../policies/features.ts';
import { forward } from '../policies/mlp.ts';
import { mlpFromOnnx } from '../policies/onnx.model.ts';
import { loadOnnxScorer, shippedModel } from '../policies/onnx.scorer.ts';
import { rng } from '../training/random.ts';
import { callApi } from '../nats/client.ts';
import { readFileSync } from 'node:fs';
import { n, type ScenarioOptions, sleepMs, withCluster } from './common.ts';
import { pct } from './measure.ts';
import { cdfChart, type Chart, type Comparison, type Figure, type ScenarioResult } from './report.ts';

const strategies = [
  { name: 'auction+onnx', args: [] },
  { name: 'auction+heuristic', args: ['--policy', 'heuristic'] },
  { name: 'centralized', args: ['--placement', 'centralized'] },
  { name: 'pull', args: ['--placement', 'pull'] },
];

type Shape = Record<string, { slots: number; speed: number }>;
const shapes: Record<string, Shape> = {
  homogeneous: { n1: { slots: 4, speed: 1 }, n2: { slots: 4, speed: 1 }, n3: { slots: 4, speed: 1 } },
  heterogeneous: { n1: { slots: 2, speed: 0.5 }, n2: { slots: 4, speed: 1 }, n3: { slots: 6, speed: 2 } },
};
type WorkloadSpec = { shape: keyof typeof shapes; arrivals: 'poisson' | 'bursty' };

const meanWorkMs = 400;
const load = 0.7;
const binMs = 250;

/** Submit times (ms from the start) and sleep lengths: the same for every strategy of a workload. */
function jobsOf(w: WorkloadSpec, seconds: number, seed: number): Array<{ at: number; ms: number }> {
  const shape = shapes[w.shape]!;
  const capacity = Object.values(shape).reduce((a, x) => a + x.slots * x.speed, 0);
  const rate = (load * capacity) / (meanWorkMs / 1000);
  const random = rng(seed);
  const out: Array<{ at: number; ms: number }> = [];
  let t = 0;
  for (const g of arrivalGaps(w.arrivals, rate, Math.ceil(rate * seconds * 3), random)) {
    t += g * 1000;
    if (t > seconds * 1000) break;
    out.push({ at: t, ms: Math.round(paretoWork(meanWorkMs, random)) });
  }
  return out;
}

type Run = { records: JobRecord[]; depth: Array<{ s: number; depth: number }>; ms: number };

async function runOne(nc: NatsConnection, tag: string, jobs: Array<{ at: number; ms: number }>): Promise<Run> {
  const t0 = Date.now();
  const depth: Run['depth'] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const s = await callApi(nc, n, 'status').catch(() => null);
      if (s) depth.push({ s: (Date.now() - t0) / 1000, depth: s.queueDepth });
      await sleepMs(binMs);
    }
  })();
  const waits: Array<Promise<JobRecord>> = [];
  for (const [i, j] of jobs.entries()) {
    await sleepMs(Math.max(0, t0 + j.at - Date.now()));
    const id = `cmp-${tag}-${i}`;
    waits.push(
      callApi(nc, n, 'jobs.submit', { id, type: 'sleep', input: { ms: j.ms } })
        .then(() => callApi(nc, n, 'jobs.wait', { id, timeoutMs: 120_000 }, 125_000)),
    );
  }
  const records = await Promise.all(waits);
  sampling = false;
  await sampler;
  return { records, depth, ms: Date.now() - t0 };
}

/** The figures of one run: success, time to start, end to end, utilisation and its Gini, starts by kind. */
function figuresOf(r: Run, shape: Shape) {
  const ok = r.records.filter((x) => x.state === 'succeeded');
  const tts = r.records.map((x) => x.attempts.find((a) => a.startedAt !== null)?.startedAt ?? x.updatedAt).map((s, i) =>
    s - r.records[i]!.createdAt
  );
  const e2e = ok.map((x) => x.updatedAt - x.createdAt);
  const busy: Record<string, number> = Object.fromEntries(Object.keys(shape).map((k) => [k, 0]));
  let fresh = 0, resumes = 0, migrations = 0;
  for (const x of r.records) {
    x.attempts.forEach((a, i) => {
      if (a.startedAt === null) return;
      if (a.node in busy) busy[a.node]! += (a.endedAt ?? a.startedAt) - a.startedAt;
      if (i === 0) fresh++;
      else if (a.resumedFrom > 0) resumes++;
      if (i > 0 && a.node !== x.attempts[i - 1]!.node) migrations++;
    });
  }
  const util = Object.entries(busy).map(([k, ms]) => ms / (shape[k]!.slots * r.ms));
  return {
    success: (100 * ok.length) / Math.max(1, r.records.length),
    tts,
    e2e,
    util,
    gini: gini(util),
    fresh,
    resumes,
    migrations,
    maxDepth: Math.max(0, ...r.depth.map((d) => d.depth)),
  };
}

/** ONNX Runtime's cost per batch of 64 bids, and the TypeScript forward pass's, over 2,000 batches. */
async function inferenceCost(): Promise<{ onnx: number[]; ts: number[] }> {
  const scorer = await loadOnnxScorer(shippedModel);
  const mlp = mlpFromOnnx(readFileSync(shippedModel));
  const random = rng(5);
  const rows = Array.from({ length: 64 }, () => ({
    slots: 4,
    freeSlots: Math.floor(random() * 5),
    running: 2,
    speed: 0.5 + 2 * random(),
    holdsCheckpoint: random() < 0.2,
    recentWins: Math.floor(random() * 8),
    priority: Math.floor(random() * 10),
    idleMs: random() * 30_000,
  }));
  const onnx: number[] = [];
  const ts: number[] = [];
  for (let i = 0; i < 2_200; i++) {
    let t = performance.now();
    await scorer.score(rows);
    if (i >= 200) onnx.push(performance.now() - t);
    t = performance.now();
    forward(mlp, featureRows(rows), rows.length);
    if (i >= 200) ts.push(performance.now() - t);
  }
  return { onnx, ts };
}

export async function compare(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = performance.now();
  const seconds = options.quick ? 6 : 20;
  const workloads: WorkloadSpec[] = options.quick ? [{ shape: 'heterogeneous', arrivals: 'poisson' }] : [
    { shape: 'homogeneous', arrivals: 'poisson' },
    { shape: 'homogeneous', arrivals: 'bursty' },
    { shape: 'heterogeneous', arrivals: 'poisson' },
    { shape: 'heterogeneous', arrivals: 'bursty' },
  ];
  const total = workloads.length * strategies.length + 1;
  let done = 0;
  options.progress(done, total, 'ONNX inference cost');
  const cost = await inferenceCost();
  const tables: Comparison[] = [];
  const charts: Chart[] = [];
  const samples: Record<string, number[]> = { 'onnx ms per batch of 64': cost.onnx, 'typescript ms per batch of 64': cost.ts };
  for (const [k, w] of workloads.entries()) {
    const label = `${w.shape}, ${w.arrivals === 'bursty' ? `bursty (CV ${burstyCv})` : 'steady Poisson'}`;
    const jobs = jobsOf(w, seconds, 1000 + k);
    const shape = shapes[w.shape]!;
    const perNode = (id: string) => ({ slots: shape[id]?.slots, args: ['--speed', String(shape[id]?.speed ?? 1)] });
    const results: Array<{ s: (typeof strategies)[number]; run: Run; f: ReturnType<typeof figuresOf> }> = [];
    for (const s of strategies) {
      options.progress(++done, total, `${label}: ${s.name} (${jobs.length} jobs in ${seconds} s)`);
      const run = await withCluster(
        (_c, nc) => runOne(nc, `${k}-${s.name.replace(/[^A-Za-z0-9]/g, '-')}-${Date.now().toString(36)}`, jobs),
        s.args,
        perNode,
      );
      results.push({ s, run, f: figuresOf(run, shape) });
      samples[`${label} / ${s.name} / time to start ms`] = results.at(-1)!.f.tts;
    }
    const row = (figure: string, unit: string, higherIsBetter: boolean | null, pick: (f: ReturnType<typeof figuresOf>) => number) => ({
      figure,
      unit,
      higherIsBetter,
      values: results.map((x) => pick(x.f)),
    });
    tables.push({
      title: `${label}: ${jobs.length} sleep jobs (Pareto, mean ${meanWorkMs} ms) in ${seconds} s, ~${load * 100} % load`,
      columns: strategies.map((s) => s.name),
      rows: [
        row('success rate', '%', true, (f) => f.success),
        row('time to start p50', 'ms', false, (f) => pct(f.tts, 50)),
        row('time to start p95', 'ms', false, (f) => pct(f.tts, 95)),
        row('time to start p99', 'ms', false, (f) => pct(f.tts, 99)),
        row('end to end mean', 'ms', false, (f) => f.e2e.reduce((a, b) => a + b, 0) / Math.max(1, f.e2e.length)),
        row('end to end p99', 'ms', false, (f) => pct(f.e2e, 99)),
        row('queue depth, max', '', false, (f) => f.maxDepth),
        ...Object.keys(shape).map((id, i) =>
          row(`utilisation ${id} (${shape[id]!.slots} slots ×${shape[id]!.speed})`, '%', null, (f) => 100 * f.util[i]!)
        ),
        row('Gini of utilisation', '', false, (f) => f.gini),
        row('fresh starts', '', null, (f) => f.fresh),
        row('resumes', '', null, (f) => f.resumes),
        row('migrations', '', null, (f) => f.migrations),
      ],
    });
    const slug = `${w.shape}-${w.arrivals}`;
    charts.push(cdfChart(`compare-${slug}-tts`, `time to start, ${label}`, Object.fromEntries(results.map((x) => [x.s.name, x.f.tts]))));
    charts.push(
      depthChart(
        `compare-${slug}-depth`,
        `queue depth over time, ${label}`,
        Object.fromEntries(results.map((x) => [x.s.name, x.run.depth])),
      ),
    );
  }
  const inference = (p: number): Figure => ({
    figure: `ONNX inference per batch of 64 bids, p${p}`,
    unit: 'ms',
    shoal: pct(cost.onnx, p),
    baseline: { name: 'TypeScript forward pass', value: pct(cost.ts, p) },
    higherIsBetter: false,
    goal: { text: '≤ 0.1 ms', met: pct(cost.onnx, p) <= 0.1 },
  });
  const figures = [inference(50), inference(99)];
  return {
    scenario: 'compare',
    title: 'Strategy comparison: auction (learned and heuristic scorer), centralized, pull',
    setup:
      `3 node processes per run (homogeneous: 3 × 4 slots at speed 1; heterogeneous: 2 slots ×0.5, 4 ×1, 6 ×2 via --slots and --speed), one nats-server, lease TTL 1000 ms; a fresh cluster per strategy and workload; the same seeded jobs for every strategy`,
    figures,
    tables,
    samples,
    charts,
    notes: ['★ marks the best value of a row (none for counts and utilisation, which are not better or worse by themselves).'],
    ms: performance.now() - began,
  };
}

/** Queue depth sampled over time, a line per strategy. */
function depthChart(name: string, title: string, series: Record<string, Array<{ s: number; depth: number }>>): Chart {
  return {
    name,
    title,
    rows: Object.entries(series).flatMap(([strategy, xs]) => xs.map((x) => ({ strategy, s: x.s, depth: x.depth }))),
    spec: {
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 's', type: 'quantitative', title: 'seconds' },
        y: { field: 'depth', type: 'quantitative', title: 'queued jobs' },
        color: { field: 'strategy', type: 'nominal', title: null },
      },
    },
  };
}
