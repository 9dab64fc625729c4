// The scenarios of `shoal bench`, each on a fresh local cluster (3 node
// processes, one nats-server, lease TTL 1 s): overhead (submit → start and
// jobs/s beside a plain JetStream work queue), failover (leader killed and
// stopped, time to the new leader's first action), recovery (a checkpointing
// job killed at 25/50/75 %). Each returns a ScenarioResult; `progress` says how far.
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { waitForReady } from '../harness/local.cluster.ts';
import { LeaderWatch } from '../harness/watch.ts';
import { callApi } from '../nats/client.ts';
import { pct, writesPerJob } from './measure.ts';
import { n, type ScenarioOptions, setup, ttl, window, withCluster } from './common.ts';
import { loadUnderFaults } from './load.faults.ts';
import { compare } from './compare.ts';
import { phases, preemption } from './scheduling.ts';
import { scale } from './scale.ts';
import { stage0Scenario } from './stage0.ts';
import { cdfChart, type ScenarioResult, stripChart } from './report.ts';

export type { ScenarioOptions };

/** Submit → handler start of `count` noop jobs, `width` in flight (record createdAt → attempt startedAt). */
async function startLatency(
  nc: NatsConnection,
  tag: string,
  count: number,
  width: number,
  tick: (deps: number) => void,
): Promise<number[]> {
  const lat: number[] = [];
  await window(count, width, async (i) => {
    const { id } = await callApi(nc, n, 'jobs.submit', { type: 'noop', id: `lat-${tag}-${i}` });
    const r = await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 60_000 }, 65_000);
    lat.push(r.attempts[0]!.startedAt! - r.createdAt);
  }, tick);
  return lat;
}

/** The same through a plain JetStream work queue: publish → a pull consumer has it (ms), and messages/s with 3 consumers acking. */
async function workQueue(nc: NatsConnection, count: number, width: number): Promise<{ latency: number[]; perSecond: number }> {
  const jsm = await jetstreamManager(nc);
  const name = `bench_wq_${Date.now()}`;
  await jsm.streams.add({ name, subjects: [`${name}.>`], retention: RetentionPolicy.Workqueue });
  await jsm.consumers.add(name, { durable_name: 'w', ack_policy: AckPolicy.Explicit });
  const js = jetstream(nc);
  const sent = new Map<number, { at: number; got: () => void }>();
  const latency: number[] = [];
  const consumers = await Promise.all([0, 1, 2].map(async () => await (await js.consumers.get(name, 'w')).consume({ max_messages: 256 })));
  for (const msgs of consumers) {
    void (async () => {
      for await (const m of msgs) {
        m.ack();
        const k = Number(m.string());
        const s = sent.get(k);
        if (s) latency.push(performance.now() - s.at), s.got();
      }
    })();
  }
  const run = async (k0: number, k: number, w: number, measure: boolean) => {
    await window(k, w, async (i) => {
      const key = k0 + i;
      const got = new Promise<void>((resolve) => sent.set(key, { at: performance.now(), got: resolve }));
      await js.publish(`${name}.job`, new TextEncoder().encode(String(key)));
      await got;
      if (!measure) latency.pop();
    });
  };
  await run(0, Math.min(count, 500), 4, true);
  const began = performance.now();
  await run(1e7, count, width, false);
  const perSecond = count / ((performance.now() - began) / 1000);
  consumers.forEach((c) => c.stop());
  await jsm.streams.delete(name);
  return { latency, perSecond };
}

type OverheadRun = { lat: number[]; jobsPerSecond: number; perJob: Record<string, number> };

/** Submit → start at light load, then jobs/s with `width` in flight, on a fresh cluster whose nodes get `nodeArgs`. */
async function shoalOverhead(
  nodeArgs: string[],
  k: { warm: number; light: number; heavy: number; width: number },
  tick: (done: number, what: string) => void,
  after?: (nc: NatsConnection) => Promise<void>,
): Promise<OverheadRun> {
  return await withCluster(async (_c, nc) => {
    const tag = Date.now().toString(36);
    // Unmeasured first: freshly started processes are still compiling their hot paths.
    await startLatency(nc, `${tag}-warm`, k.warm, 16, (d) => tick(d, 'warming up'));
    const lat = await startLatency(nc, tag, k.light, 4, (d) => tick(k.warm + d, 'submit → start, 4 in flight'));
    const t0 = performance.now();
    const { perJob } = await writesPerJob(nc, n, k.heavy, () =>
      window(k.heavy, k.width, async (i) => {
        await callApi(nc, n, 'jobs.submit', { type: 'noop', id: `tp-${tag}-${i}` });
        await callApi(nc, n, 'jobs.wait', { id: `tp-${tag}-${i}`, timeoutMs: 120_000 }, 125_000);
      }, (d) => tick(k.warm + k.light + d, `noop jobs/s, ${k.width} in flight`)));
    const jobsPerSecond = k.heavy / ((performance.now() - t0) / 1000);
    await after?.(nc);
    return { lat, jobsPerSecond, perJob };
  }, nodeArgs);
}

export async function overhead(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = performance.now();
  const k = { warm: options.quick ? 100 : 300, light: options.quick ? 300 : 2000, heavy: options.quick ? 1000 : 5000, width: 256 };
  const { width, heavy, light, warm } = k;
  const each = warm + light + heavy;
  const total = 2 * each + heavy;
  let wq: { latency: number[]; perSecond: number } = { latency: [], perSecond: 0 };
  const auction = await shoalOverhead([], k, (d, what) => options.progress(d, total, what), async (nc) => {
    // NATS's own floor, on the same server in the same run.
    options.progress(each, total, 'the JetStream work queue');
    wq = await workQueue(nc, heavy, width);
  });
  const central = await shoalOverhead(
    ['--placement', 'centralized'],
    k,
    (d, what) => options.progress(each + heavy + d, total, `centralized: ${what}`),
  );
  const { lat, jobsPerSecond, perJob } = auction;
  const wqLat = pct(wq.latency, 50);
  const vsCentral = (figure: string, shoal: number, value: number, higherIsBetter = false) => ({
    figure,
    unit: higherIsBetter ? '/s' : 'ms',
    shoal,
    baseline: { name: 'centralized', value },
    higherIsBetter,
  });
  return {
    scenario: 'overhead',
    title: 'Overhead: submit → start, and noop jobs/s',
    setup:
      `${setup}; after ${warm} unmeasured, ${light} noop jobs 4 in flight, then ${heavy} with ${width} in flight; baselines: a JetStream work-queue stream on the same server (3 pull consumers acking), and the same cluster with \`--placement centralized\` (the leader assigns to the least-loaded node, no bids)`,
    figures: [
      {
        figure: 'submit → start p50 (4 in flight)',
        unit: 'ms',
        shoal: pct(lat, 50),
        baseline: { name: 'work queue publish → delivered', value: wqLat },
        higherIsBetter: false,
        goal: { text: '≤ 2 ms', met: pct(lat, 50) <= 2 },
      },
      {
        figure: 'submit → start p95',
        unit: 'ms',
        shoal: pct(lat, 95),
        baseline: { name: 'work queue', value: pct(wq.latency, 95) },
        higherIsBetter: false,
      },
      {
        figure: 'submit → start p99',
        unit: 'ms',
        shoal: pct(lat, 99),
        baseline: { name: 'work queue', value: pct(wq.latency, 99) },
        higherIsBetter: false,
        goal: { text: '≤ 10 ms', met: pct(lat, 99) <= 10 },
      },
      {
        figure: `noop jobs/s, submit → succeeded (${width} in flight)`,
        unit: '/s',
        shoal: jobsPerSecond,
        baseline: { name: 'work queue msgs/s', value: wq.perSecond },
        goal: { text: '≥ 2,000/s and ≥ 0.12×', met: jobsPerSecond >= 2000 && jobsPerSecond / wq.perSecond >= 0.12 },
      },
      vsCentral('auction vs centralized: submit → start p50', pct(lat, 50), pct(central.lat, 50)),
      vsCentral('auction vs centralized: submit → start p99', pct(lat, 99), pct(central.lat, 99)),
      vsCentral('auction vs centralized: noop jobs/s', jobsPerSecond, central.jobsPerSecond, true),
      ...Object.entries(perJob).map(([what, k]) => ({ figure: `${what} per job`, unit: '', shoal: k })),
    ],
    samples: {
      'shoal submit→start ms': lat,
      'centralized submit→start ms': central.lat,
      'work queue publish→delivered ms': wq.latency,
    },
    charts: [
      cdfChart('overhead-cdf', 'submit → start (4 in flight)', {
        'Shoal (auction)': lat,
        'Shoal (centralized)': central.lat,
        'JetStream work queue': wq.latency,
      }),
    ],
    notes: [
      "Writes per job are counted from the streams' last sequence over the jobs/s run (lease writes are background renewals over that time).",
      'Centralized runs on its own fresh cluster right after, with the same counts: it skips the offer/bid round trip, not the writes.',
    ],
    ms: performance.now() - began,
  };
}

type FailoverMode = { name: string; signal: 'SIGKILL' | 'SIGTERM'; fastPath?: false };

async function failoverRounds(mode: FailoverMode, rounds: number, tick: () => void): Promise<number[]> {
  return await withCluster(async (c, nc) => {
    const watch = new LeaderWatch(nc, n);
    const out: number[] = [];
    try {
      for (let i = 0; i < rounds; i++) {
        // Every round starts from the same shape: a leader and three ready nodes, renewals at a random phase.
        const leader = (await waitForReady(c.urls, 3)).leader!;
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 400));
        const victim = c.nodes.find((p) => p.id === leader.nodeId && p.running)!;
        const at = Date.now();
        if (mode.signal === 'SIGKILL') void victim.kill();
        else void victim.stop();
        const next = await watch.nextLeaderAction(leader.epoch, 10 * ttl);
        out.push(next.wall - at);
        await victim.exited;
        c.addNode(victim.id);
        tick();
      }
    } finally {
      watch.stop();
    }
    return out;
  }, mode.fastPath === false ? ['--no-fast-path'] : []);
}

export async function failover(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = performance.now();
  const rounds = options.quick ? 3 : 10;
  const modes: FailoverMode[] = [
    { name: 'kill -9 of the leader', signal: 'SIGKILL' },
    { name: 'SIGTERM of the leader', signal: 'SIGTERM' },
    // The baseline: no liveness pings, takeover waits for the lease TTL.
    ...(options.quick ? [] : [{ name: 'kill -9, fast path off (TTL only)', signal: 'SIGKILL', fastPath: false } as const]),
  ];
  const samples: Record<string, number[]> = {};
  let done = 0;
  for (const m of modes) samples[m.name] = await failoverRounds(m, rounds, () => options.progress(++done, rounds * modes.length, m.name));
  const kill = samples[modes[0]!.name]!;
  return {
    scenario: 'failover',
    title: "Failover: signal → the new leader's first action",
    setup: `${setup}; ${rounds} rounds each; time read from the new leader's event wall clock`,
    figures: [
      {
        figure: 'kill -9: median',
        unit: 'ms',
        shoal: pct(kill, 50),
        baseline: { name: 'lease TTL', value: ttl },
        higherIsBetter: false,
        goal: { text: '≤ 100 ms', met: pct(kill, 50) <= 100 },
      },
      { figure: 'kill -9: max', unit: 'ms', shoal: Math.max(...kill) },
      { figure: 'SIGTERM: median', unit: 'ms', shoal: pct(samples[modes[1]!.name]!, 50) },
      ...(modes[2] ? [{ figure: 'kill -9, fast path off: median', unit: 'ms', shoal: pct(samples[modes[2].name]!, 50) }] : []),
    ],
    samples,
    charts: [stripChart('failover-rounds', 'signal → new leader acts, each round', 'ms', samples)],
    ms: performance.now() - began,
  };
}

export async function recovery(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = performance.now();
  const input = { limit: 600_000, chunk: 20_000, pauseMs: 100 };
  return await withCluster(async (c, nc) => {
    const tag = Date.now().toString(36);
    const run = async (id: string, killAt: number | null) => {
      await callApi(nc, n, 'jobs.submit', { type: 'primes', id, input });
      let progressAtKill = 0;
      if (killAt !== null) {
        for (;;) {
          const r = await callApi(nc, n, 'jobs.get', { id });
          if (r.state === 'running' && r.progress >= killAt) {
            // Somewhere between two checkpoints, not right after one.
            await new Promise((res) => setTimeout(res, Math.random() * 100));
            progressAtKill = (await callApi(nc, n, 'jobs.get', { id })).progress;
            const victim = c.nodes.find((p) => p.id === r.owner && p.running)!;
            await victim.kill();
            c.addNode(victim.id);
            break;
          }
          await new Promise((res) => setTimeout(res, 20));
        }
      }
      const r = await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 120_000 }, 125_000);
      const last = r.attempts[r.attempts.length - 1]!;
      return { totalMs: last.endedAt! - r.createdAt, progressAtKill, resumedFrom: last.resumedFrom };
    };
    options.progress(0, 4, 'uninterrupted');
    const base = await run(`rc-${tag}-base`, null);
    const figures: ScenarioResult['figures'] = [{ figure: 'uninterrupted primes 600k', unit: 'ms', shoal: base.totalMs }];
    const samples: Record<string, number[]> = { 'uninterrupted ms': [base.totalMs] };
    let k = 1;
    for (const at of [0.25, 0.5, 0.75]) {
      options.progress(k++, 4, `killed at ${at * 100} %`);
      await waitForReady(c.urls, 3);
      const r = await run(`rc-${tag}-${at * 100}`, at);
      const fromZero = r.progressAtKill * base.totalMs + base.totalMs;
      figures.push({
        figure: `killed at ${at * 100} %: total (resumed from ${Math.round(r.resumedFrom * 100)} %)`,
        unit: 'ms',
        shoal: r.totalMs,
        baseline: { name: 'restart from zero, est.', value: Math.round(fromZero) },
        higherIsBetter: false,
      });
      samples[`killed at ${at * 100}% ms`] = [r.totalMs];
    }
    return {
      scenario: 'recovery',
      title: 'Recovery: a checkpointing job whose node is killed',
      setup: `${setup}; primes ${input.limit} (30 checkpoints, ~3 s); the node running it SIGKILLed at 25/50/75 % and restarted`,
      figures,
      samples,
      charts: [],
      notes: ['Ratio: how many times faster than restarting from zero (its estimate: the time already spent plus a whole run).'],
      ms: performance.now() - began,
    };
  });
}

export const scenarios = {
  overhead,
  failover,
  recovery,
  'load-under-faults': loadUnderFaults,
  preemption,
  phases,
  compare,
  scale,
  stage0: stage0Scenario,
} as const;
export type ScenarioName = keyof typeof scenarios;
