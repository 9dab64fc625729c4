// `scale`: how Shoal grows with the fleet. At 10, 50 and 100 nodes (one
// ordinary node process that leads, the rest virtual nodes in one process,
// `shoal node --count`), a backlog of noop jobs submitted at once: placement
// latency (submit → assigned), jobs/s, the leader's CPU, KV writes and
// JetStream API requests per second, and failover (the leader killed → the
// next leader's first action). The report puts each beside the 10-node figure.
import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { waitForReady, waitForStatus } from '../harness/local.cluster.ts';
import { type NatsServer, startServer } from '../harness/launcher.ts';
import { type NodeProcess, spawnNode } from '../harness/spawn.ts';
import { LeaderWatch } from '../harness/watch.ts';
import type { JobRecord } from '../api/contract.ts';
import { Kvm, KvWatchInclude } from '@nats-io/kv';
import { callApi } from '../nats/client.ts';
import { ApiError } from '../base/errors.ts';
import { decodeJob } from '../store/job.store.ts';
import { keys } from '../store/keys.ts';
import { defaults } from '../base/defaults.ts';
import { n, type ScenarioOptions, sleepMs, window } from './common.ts';
import { pct } from './measure.ts';
import type { Chart, Figure, ScenarioResult } from './report.ts';

const ttl = defaults.leaseTtlMs;

type Point = {
  nodes: number;
  startMs: number;
  placeP50: number;
  placeP99: number;
  jobsPerSecond: number;
  leaderCpu: number;
  leaderCpuMsPerJob: number;
  fleetCpu: number;
  idleLeaseWrites: number;
  kvWritesPerJob: number;
  kvWrites: number;
  apiRequests: number;
  failoverMs: number;
  submitRetries: number;
};

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz on Linux)
}

/** The server's counters: messages stored in the KV streams, and JetStream API requests served. */
async function serverCounters(server: NatsServer): Promise<{ kvWrites: number; leaseWrites: number; api: number }> {
  const r = await fetch(`http://127.0.0.1:${server.monitorPort}/jsz?streams=true`);
  const j = (await r.json()) as {
    api: { total: number };
    account_details?: Array<{ stream_detail?: Array<{ name: string; state: { last_seq: number } }> }>;
  };
  const streams = (j.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
  const seq = (name: string) => streams.find((s) => s.name === name)?.state.last_seq ?? 0;
  const leaseWrites = seq(`KV_${n.leasesBucket}`);
  return { kvWrites: seq(`KV_${n.jobsBucket}`) + seq(`KV_${n.checkpointsBucket}`) + leaseWrites, leaseWrites, api: j.api.total };
}

/** Every job record, read from the bucket's stream in one pass (the API's list reads every record per page: too slow at 10,000). */
async function allRecords(nc: NatsConnection, count: number): Promise<JobRecord[]> {
  const kv = await new Kvm(nc).open(n.jobsBucket);
  const out = new Map<string, JobRecord>();
  const w = await kv.watch({ key: keys.jobs, include: KvWatchInclude.LastValue, ignoreDeletes: true });
  for await (const e of w) {
    out.set(e.key, decodeJob(e.value, e.key));
    if (out.size >= count) break;
  }
  w.stop();
  return [...out.values()];
}

async function measureFleet(nodes: number, jobs: number, tick: (what: string) => void): Promise<Point> {
  const server = await startServer();
  const procs: NodeProcess[] = [];
  let nc: NatsConnection | null = null;
  try {
    nc = await connect({ servers: server.url });
    const args = ['--io-slots', '0', '--no-preempt'];
    const lead = spawnNode({ id: 'lead', nats: server.url, leaseTtlMs: ttl, args });
    procs.push(lead);
    await waitForReady([server.url], 1);
    const began = performance.now();
    tick(`${nodes} nodes: starting ${nodes - 1} virtual nodes`);
    procs.push(spawnNode({ id: 'v', nats: server.url, leaseTtlMs: ttl, args: ['--count', String(nodes - 1), ...args] }));
    await waitForReady([server.url], nodes, { timeoutMs: 180_000 });
    const startMs = performance.now() - began;

    tick(`${nodes} nodes: idle lease writes`);
    const idle0 = await serverCounters(server);
    const idleT0 = performance.now();
    await sleepMs(5_000);
    const idle1 = await serverCounters(server);
    const idleLeaseWrites = (idle1.leaseWrites - idle0.leaseWrites) / ((performance.now() - idleT0) / 1000);

    tick(`${nodes} nodes: ${jobs} noop jobs`);
    const c0 = await serverCounters(server);
    const cpu0 = cpuSeconds(lead.pid);
    const fleetCpu0 = cpuSeconds(procs[1]!.pid);
    const t0 = performance.now();
    // 64 in flight, each given 2 min: at 50+ nodes a submit can wait seconds (docs/benchmarks.md, Scale), and must not fail the run.
    // A node whose KV write timed out under the load answers 500; submit is idempotent by id, so send it again (counted).
    let retries = 0;
    const submit = async (i: number): Promise<void> => {
      for (let attempt = 1;; attempt++) {
        try {
          return void await callApi(nc!, n, 'jobs.submit', { type: 'noop', id: `s${nodes}-${i}` }, 120_000);
        } catch (err) {
          if (attempt >= 10 || !(err instanceof ApiError) || err.status < 500) throw err;
          retries++;
          await sleepMs(100 * attempt);
        }
      }
    };
    await window(jobs, 64, submit);
    await waitForStatus([server.url], (s) => s.jobs.succeeded >= jobs, {
      what: `${jobs} jobs done`,
      timeoutMs: 600_000,
    });
    const secs = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds(lead.pid);
    const fleetCpu1 = cpuSeconds(procs[1]!.pid);
    const c1 = await serverCounters(server);
    const records = await allRecords(nc, jobs);
    const place = records.map((r) => r.attempts[0]!.assignedAt - r.createdAt);

    tick(`${nodes} nodes: failover`);
    const watch = new LeaderWatch(nc, n);
    try {
      const leader = (await waitForStatus([server.url], (s) => s.leader?.nodeId === 'lead', { what: 'lead leading' })).leader!;
      const at = Date.now();
      void lead.kill();
      const next = await watch.nextLeaderAction(leader.epoch, 10 * ttl);
      return {
        nodes,
        startMs,
        placeP50: pct(place, 50),
        placeP99: pct(place, 99),
        jobsPerSecond: jobs / secs,
        leaderCpu: (100 * (cpu1 - cpu0)) / secs,
        leaderCpuMsPerJob: (1000 * (cpu1 - cpu0)) / jobs,
        fleetCpu: (100 * (fleetCpu1 - fleetCpu0)) / secs,
        idleLeaseWrites,
        kvWrites: (c1.kvWrites - c0.kvWrites) / secs,
        kvWritesPerJob: (c1.kvWrites - c0.kvWrites) / jobs,
        apiRequests: (c1.api - c0.api) / secs,
        failoverMs: next.wall - at,
        submitRetries: retries,
      };
    } finally {
      watch.stop();
    }
  } finally {
    await nc?.close();
    await Promise.all(procs.map((p) => p.stop()));
    await server[Symbol.asyncDispose]();
  }
}

/** A line per figure over the fleet sizes. */
function growthChart(name: string, title: string, yTitle: string, points: Point[], series: Record<string, (p: Point) => number>): Chart {
  return {
    name,
    title,
    rows: points.flatMap((p) => Object.entries(series).map(([s, f]) => ({ series: s, nodes: p.nodes, value: f(p) }))),
    spec: {
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'nodes', type: 'quantitative', title: 'nodes' },
        y: { field: 'value', type: 'quantitative', title: yTitle },
        color: { field: 'series', type: 'nominal', title: null },
      },
    },
  };
}

export async function scale(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = performance.now();
  const sizes = options.quick ? [10, 50] : [10, 50, 100];
  const jobs = options.quick ? 1_000 : 10_000;
  const points: Point[] = [];
  for (const [i, size] of sizes.entries()) points.push(await measureFleet(size, jobs, (what) => options.progress(i, sizes.length, what)));
  options.progress(sizes.length, sizes.length, 'done');
  const base = points[0]!;
  const rows: Array<[string, string, (p: Point) => number, boolean]> = [
    ['submit → assigned p50', 'ms', (p) => p.placeP50, false],
    ['submit → assigned p99', 'ms', (p) => p.placeP99, false],
    ['noop jobs/s', '/s', (p) => p.jobsPerSecond, true],
    ["leader's CPU (% of one core)", '%', (p) => p.leaderCpu, false],
    ["leader's CPU per job", 'ms', (p) => p.leaderCpuMsPerJob, false],
    ["the other nodes' process CPU (% of one core)", '%', (p) => p.fleetCpu, false],
    ['KV writes/s under load', '/s', (p) => p.kvWrites, true],
    ['KV writes per job (leases included)', '', (p) => p.kvWritesPerJob, false],
    ['JetStream API requests/s under load', '/s', (p) => p.apiRequests, true],
    ['idle lease writes/s', '/s', (p) => p.idleLeaseWrites, false],
    ['failover (leader killed → next leader acts)', 'ms', (p) => p.failoverMs, false],
    ['all nodes ready after start', 'ms', (p) => p.startMs, false],
    ['submits answered 500 (a KV write timed out) and sent again', '', (p) => p.submitRetries, false],
  ];
  const figures: Figure[] = points.flatMap((p) =>
    rows.map(([figure, unit, f, higherIsBetter]) => ({
      figure: `${p.nodes} nodes: ${figure}`,
      unit,
      shoal: f(p),
      ...(p === base ? {} : { baseline: { name: `${base.nodes} nodes`, value: f(base) }, higherIsBetter }),
    }))
  );
  return {
    scenario: 'scale',
    title: `Scale: ${sizes.join(', ')} nodes, ${jobs.toLocaleString('en')} queued noop jobs`,
    setup:
      `one nats-server; one node process that leads ('lead') and ${
        sizes.map((s) => s - 1).join('/')
      } virtual nodes in one more process (shoal node --count), 4 slots each, --io-slots 0, lease TTL ${ttl} ms; ` +
      `${jobs} noop jobs submitted 64 in flight, then awaited; then the leader is killed`,
    figures,
    samples: Object.fromEntries(rows.map(([figure, , f]) => [figure, points.map(f)])),
    charts: [
      growthChart('scale-placement', 'submit → assigned (ms) by fleet size', 'ms', points, {
        p50: (p) => p.placeP50,
        p99: (p) => p.placeP99,
      }),
      growthChart('scale-throughput', 'noop jobs/s by fleet size', 'jobs/s', points, { 'jobs/s': (p) => p.jobsPerSecond }),
      growthChart('scale-load', 'server load by fleet size', 'per second', points, {
        'KV writes/s (load)': (p) => p.kvWrites,
        'JetStream API requests/s (load)': (p) => p.apiRequests,
        'lease writes/s (idle)': (p) => p.idleLeaseWrites,
      }),
      growthChart('scale-cpu', 'CPU by fleet size (% of one core; this machine has 2)', '%', points, {
        "leader's process": (p) => p.leaderCpu,
        "the other nodes' process": (p) => p.fleetCpu,
      }),
      growthChart('scale-failover', 'failover by fleet size', 'ms', points, { 'leader killed → next leader acts': (p) => p.failoverMs }),
    ],
    notes: [
      'Ratios compare each size with the smallest: above 1× the larger fleet is better, below 1× it is worse (for rates the ' +
      'server serves, KV writes/s and API requests/s, above 1× means more of them: more work done).',
      'Every virtual node shares the one process (and this machine): the fleet and the leader compete for the same cores.',
    ],
    ms: performance.now() - began,
  };
}
