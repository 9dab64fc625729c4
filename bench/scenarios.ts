// The scenarios of `shoal bench`, each on a fresh local cluster (3 node
// processes, one nats-server, lease TTL 1 s): overhead (bench/overhead.ts:
// the dispatcher, the auction and a JetStream work queue), failover (leader killed and
// stopped, time to the new leader's first action), recovery (a checkpointing
// job killed at 25/50/75 %). Each returns a ScenarioResult; `progress` says how far.
import { waitForReady } from '../harness/local.cluster.ts';
import { LeaderWatch } from '../harness/watch.ts';
import { callApi } from '../nats/client.ts';
import { pct } from './measure.ts';
import { n, type ScenarioOptions, setup, ttl, window, withCluster } from './common.ts';
import { until } from '../base/time.ts';
import { loadUnderFaults } from './load.faults.ts';
import { compare } from './compare.ts';
import { phases, preemption } from './scheduling.ts';
import { scale } from './scale.ts';
import { memory } from './memory.ts';
import { overhead } from './overhead.ts';
import { stage0Scenario } from './stage0.ts';
import { type ScenarioResult, stripChart } from './report.ts';

export type { ScenarioOptions };

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

/**
 * Failover with `live` jobs in the table (long `sleep`s: 12 run, the rest queued): the leader SIGKILLed, its warm
 * standby taking over; or (`cold`) the leader and its standby SIGKILLed together, the third node rebuilding the
 * table from the bucket. Signal → the new leader's first action, and → its first placement (table loaded).
 */
async function loadedFailoverRounds(cold: boolean, rounds: number, live: number, tick: () => void) {
  return await withCluster(async (c, nc) => {
    const watch = new LeaderWatch(nc, n);
    const acts: number[] = [];
    const placing: number[] = [];
    try {
      const tag = Date.now().toString(36);
      await window(live, 64, async (i) => {
        await callApi(nc, n, 'jobs.submit', { type: 'sleep', id: `live-${tag}-${i}`, input: { ms: 3_600_000 } });
      });
      for (let i = 0; i < rounds; i++) {
        const leader = (await waitForReady(c.urls, 3)).leader!;
        const standby = await until('a named standby', async () => (await callApi(nc, n, 'status')).leader?.standby, 10_000);
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 400));
        const victims = c.nodes.filter((p) => p.running && (p.id === leader.nodeId || (cold && p.id === standby)));
        const at = Date.now();
        for (const v of victims) void v.kill();
        acts.push((await watch.nextLeaderAction(leader.epoch, 30 * ttl)).wall - at);
        placing.push((await watch.nextLeaderPlacing(leader.epoch, 60 * ttl)).wall - at);
        for (const v of victims) {
          await v.exited;
          c.addNode(v.id);
        }
        tick();
      }
    } finally {
      watch.stop();
    }
    return { acts, placing };
  });
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
  const loadedRounds = options.quick ? 1 : 3;
  const live = options.quick ? 2_000 : 10_000;
  const total = rounds * modes.length + 2 * loadedRounds;
  for (const m of modes) samples[m.name] = await failoverRounds(m, rounds, () => options.progress(++done, total, m.name));
  const loaded: Record<string, { acts: number[]; placing: number[] }> = {};
  for (const cold of [false, true]) {
    const name = `${live.toLocaleString('en')} live jobs, kill -9 of the leader${cold ? ' and its standby (cold)' : ' (warm standby)'}`;
    loaded[cold ? 'cold' : 'warm'] = await loadedFailoverRounds(cold, loadedRounds, live, () => options.progress(++done, total, name));
    samples[`${name}: to placing`] = loaded[cold ? 'cold' : 'warm']!.placing;
  }
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
      {
        figure: `${live.toLocaleString('en')} live jobs, warm standby: signal → new leader placing (median)`,
        unit: 'ms',
        shoal: pct(loaded.warm!.placing, 50),
        higherIsBetter: false,
        goal: { text: '≤ 100 ms', met: pct(loaded.warm!.placing, 50) <= 100 },
      },
      {
        figure: `${live.toLocaleString('en')} live jobs, warm standby: → new leader acts (median)`,
        unit: 'ms',
        shoal: pct(loaded.warm!.acts, 50),
      },
      {
        figure: `${live.toLocaleString('en')} live jobs, cold (leader and standby killed): → placing (median)`,
        unit: 'ms',
        shoal: pct(loaded.cold!.placing, 50),
      },
      { figure: `${live.toLocaleString('en')} live jobs, cold: → new leader acts (median)`, unit: 'ms', shoal: pct(loaded.cold!.acts, 50) },
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
  memory,
  stage0: stage0Scenario,
} as const;
export type ScenarioName = keyof typeof scenarios;
