// `shoal bench overhead`: what a job costs, side by side in one run: the
// dispatcher (the default), the auction (the previous design, `--placement
// auction`), and a plain JetStream work queue on the same server. Submit →
// start at light load (from the record's createdAt, and as the client saw
// it), noop jobs/s with 256 in flight, stored messages per job, and CPU per
// job of every process (the nats-server, the three nodes, the client).
import { readFileSync } from 'node:fs';
import type { NatsConnection } from '@nats-io/transport-node';
import type { LocalCluster } from '../harness/local.cluster.ts';
import { callApi } from '../nats/client.ts';
import { pct, writesPerJob } from './measure.ts';
import { n, type ScenarioOptions, setup, window, withCluster } from './common.ts';
import { cdfChart, type Comparison, type ScenarioResult } from './report.ts';
import { workQueue } from './work.queue.ts';

type Run = {
  /** Submit → start: from the record's createdAt, and from the client's send. */
  lat: number[];
  seen: number[];
  jobsPerSecond: number;
  perJob: Record<string, number>;
  /** CPU ms per job of the server, the nodes together, and the client. */
  cpu: { server: number; nodes: number; client: number };
};

/** CPU ms (user + system) of a process from /proc (10 ms ticks). */
function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

function cpuMeter(c: LocalCluster) {
  const server = c.servers[0]!.pid!;
  const nodes = c.nodes.map((x) => x.pid);
  const take = () => ({ server: cpuMs(server), nodes: nodes.reduce((a, p) => a + cpuMs(p), 0), client: process.cpuUsage() });
  const before = take();
  return (jobs: number) => {
    const after = take();
    const client = process.cpuUsage(before.client);
    return {
      server: (after.server - before.server) / jobs,
      nodes: (after.nodes - before.nodes) / jobs,
      client: (client.user + client.system) / 1000 / jobs,
    };
  };
}

async function latency(nc: NatsConnection, tag: string, count: number, width: number, tick: (d: number) => void) {
  const lat: number[] = [];
  const seen: number[] = [];
  await window(count, width, async (i) => {
    const sent = Date.now();
    const { id } = await callApi(nc, n, 'jobs.submit', { type: 'noop', id: `lat-${tag}-${i}` });
    const r = await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 60_000 }, 65_000);
    const startedAt = r.attempts[0]!.startedAt!;
    lat.push(startedAt - r.createdAt);
    seen.push(startedAt - sent);
  }, tick);
  return { lat, seen };
}

/** One placement on a fresh cluster: warm up, submit → start at 4 in flight, then jobs/s at `width`. */
async function shoalRun(
  nodeArgs: string[],
  k: { warm: number; light: number; heavy: number; width: number },
  tick: (done: number, what: string) => void,
  after?: (nc: NatsConnection, c: LocalCluster) => Promise<void>,
): Promise<Run> {
  return await withCluster(async (c, nc) => {
    const tag = Date.now().toString(36);
    // Unmeasured first: freshly started processes are still compiling their hot paths.
    await latency(nc, `${tag}-warm`, k.warm, 16, (d) => tick(d, 'warming up'));
    const { lat, seen } = await latency(nc, tag, k.light, 4, (d) => tick(k.warm + d, 'submit → start, 4 in flight'));
    const cpu = cpuMeter(c);
    const t0 = performance.now();
    const { perJob } = await writesPerJob(nc, n, k.heavy, () =>
      window(k.heavy, k.width, async (i) => {
        await callApi(nc, n, 'jobs.submit', { type: 'noop', id: `tp-${tag}-${i}` });
        await callApi(nc, n, 'jobs.wait', { id: `tp-${tag}-${i}`, timeoutMs: 120_000 }, 125_000);
      }, (d) => tick(k.warm + k.light + d, `noop jobs/s, ${k.width} in flight`)));
    const jobsPerSecond = k.heavy / ((performance.now() - t0) / 1000);
    const perJobCpu = cpu(k.heavy);
    await after?.(nc, c);
    return { lat, seen, jobsPerSecond, perJob, cpu: perJobCpu };
  }, nodeArgs);
}

export async function overhead(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = performance.now();
  const k = { warm: options.quick ? 200 : 500, light: options.quick ? 300 : 2000, heavy: options.quick ? 2000 : 10000, width: 256 };
  const each = k.warm + k.light + k.heavy;
  const total = 2 * each + k.heavy;
  let wq: { latency: number[]; perSecond: number } = { latency: [], perSecond: 0 };
  let wqCpu = { server: 0, nodes: 0, client: 0 };
  const dispatch = await shoalRun([], k, (d, what) => options.progress(d, total, `dispatch: ${what}`), async (nc, c) => {
    // NATS's own floor, on the same server in the same run: its CPU is the server's and this process's (the consumers).
    options.progress(each, total, 'the JetStream work queue');
    const cpu = cpuMeter(c);
    wq = await workQueue(nc, k.heavy, k.width);
    wqCpu = cpu(k.heavy);
    wqCpu.nodes = 0; // the nodes idle meanwhile; their lease renewals are not the queue's
  });
  const auction = await shoalRun(
    ['--placement', 'auction'],
    k,
    (d, what) => options.progress(each + k.heavy + d, total, `auction: ${what}`),
  );
  const stored = (r: Run) =>
    (r.perJob['job record writes'] ?? 0) + (r.perJob['checkpoint writes'] ?? 0) + (r.perJob['event publishes'] ?? 0);
  const cpuAll = (r: Run) => r.cpu.server + r.cpu.nodes + r.cpu.client;
  const d = dispatch;
  const comparison: Comparison = {
    title: `noop jobs, 3 nodes: the dispatcher beside the auction (the previous design) and a JetStream work queue`,
    columns: ['dispatch', 'auction', 'work queue'],
    rows: [
      {
        figure: `jobs/s (${k.width} in flight)`,
        unit: '/s',
        values: [d.jobsPerSecond, auction.jobsPerSecond, wq.perSecond],
        higherIsBetter: true,
      },
      {
        figure: 'submit → start p50 (createdAt)',
        unit: 'ms',
        values: [pct(d.lat, 50), pct(auction.lat, 50), pct(wq.latency, 50)],
        higherIsBetter: false,
      },
      {
        figure: 'submit → start p99 (createdAt)',
        unit: 'ms',
        values: [pct(d.lat, 99), pct(auction.lat, 99), pct(wq.latency, 99)],
        higherIsBetter: false,
      },
      {
        figure: 'submit → start p50 (client)',
        unit: 'ms',
        values: [pct(d.seen, 50), pct(auction.seen, 50), pct(wq.latency, 50)],
        higherIsBetter: false,
      },
      {
        figure: 'submit → start p99 (client)',
        unit: 'ms',
        values: [pct(d.seen, 99), pct(auction.seen, 99), pct(wq.latency, 99)],
        higherIsBetter: false,
      },
      { figure: 'stored messages per job', unit: '', values: [stored(d), stored(auction), 1], higherIsBetter: false },
      {
        figure: 'CPU per job, all processes',
        unit: 'ms',
        values: [cpuAll(d), cpuAll(auction), wqCpu.server + wqCpu.client],
        higherIsBetter: false,
      },
      { figure: 'CPU per job, nats-server', unit: 'ms', values: [d.cpu.server, auction.cpu.server, wqCpu.server], higherIsBetter: false },
      { figure: 'CPU per job, the 3 nodes', unit: 'ms', values: [d.cpu.nodes, auction.cpu.nodes, 0], higherIsBetter: false },
      {
        figure: 'CPU per job, the client (this bench)',
        unit: 'ms',
        values: [d.cpu.client, auction.cpu.client, wqCpu.client],
        higherIsBetter: false,
      },
    ],
  };
  return {
    scenario: 'overhead',
    title: 'Overhead: the dispatcher, the auction and a JetStream work queue',
    setup:
      `${setup}; each placement on a fresh cluster: ${k.warm} unmeasured, ${k.light} noop jobs 4 in flight, then ${k.heavy} with ${k.width} in flight; ` +
      `the work queue on the dispatcher's server (3 pull consumers in this process acking, ${k.heavy} messages, ${k.width} in flight; its CPU: the server's and this process's); CPU per job from /proc over the jobs/s run`,
    figures: [
      {
        figure: 'submit → start p50 (4 in flight)',
        unit: 'ms',
        shoal: pct(d.lat, 50),
        baseline: { name: 'auction', value: pct(auction.lat, 50) },
        higherIsBetter: false,
        goal: { text: '≤ 2 ms', met: pct(d.lat, 50) <= 2 },
      },
      {
        figure: 'submit → start p99 (4 in flight)',
        unit: 'ms',
        shoal: pct(d.lat, 99),
        baseline: { name: 'auction', value: pct(auction.lat, 99) },
        higherIsBetter: false,
        goal: { text: '≤ 10 ms', met: pct(d.lat, 99) <= 10 },
      },
      {
        figure: `noop jobs/s (${k.width} in flight)`,
        unit: '/s',
        shoal: d.jobsPerSecond,
        baseline: { name: 'work queue msgs/s', value: wq.perSecond },
        goal: { text: '≥ 2,000/s and ≥ 0.15×', met: d.jobsPerSecond >= 2000 && d.jobsPerSecond / wq.perSecond >= 0.15 },
      },
      {
        figure: 'stored messages per job',
        unit: '',
        shoal: stored(d),
        baseline: { name: 'auction', value: stored(auction) },
        higherIsBetter: false,
        goal: { text: '≤ 2.5', met: stored(d) <= 2.5 },
      },
      {
        figure: 'CPU per job, all processes',
        unit: 'ms',
        shoal: cpuAll(d),
        baseline: { name: 'auction', value: cpuAll(auction) },
        higherIsBetter: false,
        goal: { text: '≤ 1 ms', met: cpuAll(d) <= 1 },
      },
      ...Object.entries(d.perJob).map(([what, v]) => ({ figure: `${what} per job`, unit: '', shoal: v })),
    ],
    tables: [comparison],
    samples: {
      'dispatch submit→start ms': d.lat,
      'auction submit→start ms': auction.lat,
      'work queue publish→delivered ms': wq.latency,
    },
    charts: [
      cdfChart('overhead-cdf', 'submit → start (4 in flight)', {
        'Shoal (dispatch)': d.lat,
        'Shoal (auction)': auction.lat,
        'JetStream work queue': wq.latency,
      }),
    ],
    notes: [
      "Stored messages per job are counted from the streams' last sequence over the jobs/s run: job record writes, checkpoints and event messages (many transitions each); lease writes are background renewals and counted apart.",
      'The auction runs on its own fresh cluster right after, with the same counts.',
    ],
    ms: performance.now() - began,
  };
}
