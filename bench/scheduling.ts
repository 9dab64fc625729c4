// Priorities and phases, measured: `preemption` (an urgent job's submit →
// start with every slot busy, with preemption and without) and `phases` (a mix
// of I/O-bound and CPU-bound jobs with phase-aware slots on and off).
import type { NatsConnection } from '@nats-io/transport-node';
import type { JobRecord } from '../api/contract.ts';
import { callApi } from '../nats/client.ts';
import { n, type ScenarioOptions, setup, sleepMs, window, withCluster } from './common.ts';
import { pct } from './measure.ts';
import { cdfChart, type ScenarioResult } from './report.ts';

const wait = (nc: NatsConnection, id: string) => callApi(nc, n, 'jobs.wait', { id, timeoutMs: 120_000 }, 125_000);
const firstStart = (r: JobRecord) => r.attempts.find((a) => a.startedAt !== null)!.startedAt! - r.createdAt;

/** Until every compute slot of the cluster runs a job. */
async function allBusy(nc: NatsConnection, slots: number): Promise<void> {
  for (;;) {
    const s = await callApi(nc, n, 'status', {});
    if (s.jobs.running >= slots) return;
    await sleepMs(20);
  }
}

/** A backlog of low-priority checkpointing jobs (about 10 s each, mostly pauses), urgent priority-9 jobs one at a time. */
async function urgentStarts(
  nodeArgs: string[],
  urgentCount: number,
  tick: (done: number) => void,
): Promise<{ lat: number[]; victims: JobRecord[]; urgent: JobRecord[] }> {
  return await withCluster(async (_c, nc) => {
    const tag = Date.now().toString(36);
    const slots = 12;
    const low = Array.from({ length: 40 }, (_, i) => `low-${tag}-${i}`);
    // Lengths spread from ~5 to ~15 s, so slots free at scattered times (without preemption an urgent job waits for the next).
    const input = (i: number) => ({ limit: 100_000 + ((i * 7) % 11) * 20_000, chunk: 2_000, pauseMs: 100 });
    await window(
      low.length,
      8,
      async (i) => void await callApi(nc, n, 'jobs.submit', { id: low[i], type: 'primes', input: input(i), priority: 1 }),
    );
    const urgent: JobRecord[] = [];
    for (let k = 0; k < urgentCount; k++) {
      await allBusy(nc, slots);
      await sleepMs((k * 379) % 1000); // a spread of moments, the same in both runs
      const id = `urgent-${tag}-${k}`;
      await callApi(nc, n, 'jobs.submit', { id, type: 'noop', priority: 9 });
      urgent.push(await wait(nc, id));
      tick(k + 1);
    }
    // The backlog is not the point: cancel it, then read what happened to the victims.
    await window(low.length, 8, async (i) => void await callApi(nc, n, 'jobs.cancel', { id: low[i] }));
    const lows = await Promise.all(low.map((id) => callApi(nc, n, 'jobs.get', { id })));
    return { lat: urgent.map(firstStart), victims: lows.filter((r) => r.preemptions > 0), urgent };
  }, ['--io-slots', '0', ...nodeArgs]);
}

export async function preemption(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = performance.now();
  const count = options.quick ? 8 : 30;
  const baseCount = options.quick ? 3 : 8;
  const total = count + baseCount;
  options.progress(0, total, 'urgent jobs, preemption on');
  const on = await urgentStarts([], count, (k) => options.progress(k, total, 'urgent jobs, preemption on'));
  options.progress(count, total, 'urgent jobs, preemption off (--no-preempt)');
  const off = await urgentStarts(['--no-preempt'], baseCount, (k) => options.progress(count + k, total, 'urgent jobs, --no-preempt'));
  // Each victim's preempted attempt, and the attempt that resumed it.
  const resumed = on.victims.flatMap((r) =>
    r.attempts.flatMap((a, i) => (a.outcome === 'preempted' && r.attempts[i + 1]?.startedAt ? [r.attempts[i + 1]!.resumedFrom] : []))
  );
  const preemptedAttempts = on.victims.flatMap((r) => r.attempts.filter((a) => a.outcome === 'preempted'));
  // From the urgent job's start (in the victim's slot) to the victim's attempt ending (its handler stopped, its record requeued).
  const yieldMs = preemptedAttempts.map((a) => {
    // The urgent job that took its slot: the last one started on its node before it ended.
    const starts = on.urgent.map((x) => x.attempts[0]!).filter((x) => x.node === a.node && x.startedAt! <= a.endedAt!);
    return starts.length ? a.endedAt! - Math.max(...starts.map((x) => x.startedAt!)) : NaN;
  }).filter(Number.isFinite);
  return {
    scenario: 'preemption',
    title: 'Preemption: an urgent job with every slot busy',
    setup: `${setup}, --io-slots 0; a backlog of 40 priority-1 primes jobs (a checkpoint every ~100 ms, 5 to 15 s each) keeps all ` +
      `12 slots busy; ${count} priority-9 noop jobs submitted one at a time, each 0–1 s after every slot is busy; ` +
      `baseline: the same with --no-preempt (${baseCount} jobs)`,
    figures: [
      ...[50, 99].map((q) => ({
        figure: `urgent submit → start p${q}`,
        unit: 'ms',
        shoal: pct(on.lat, q),
        baseline: { name: '--no-preempt', value: pct(off.lat, q) },
        higherIsBetter: false,
        goal: { text: '≤ 50 ms', met: pct(on.lat, q) <= 50 },
      })),
      {
        figure: 'urgent jobs that preempted a running job',
        unit: '',
        shoal: preemptedAttempts.length,
        baseline: { name: 'urgent jobs', value: count },
      },
      { figure: 'victim: urgent start → its attempt ends, p50', unit: 'ms', shoal: pct(yieldMs, 50), higherIsBetter: false },
      {
        figure: 'victims resumed from a checkpoint',
        unit: '',
        shoal: resumed.filter((p) => p > 0).length,
        baseline: { name: 'victims resumed', value: resumed.length },
      },
    ],
    samples: {
      'urgent submit→start ms (preemption)': on.lat,
      'urgent submit→start ms (--no-preempt)': off.lat,
      'victim yield ms': yieldMs,
    },
    charts: [cdfChart('preemption-start', 'urgent job: submit → start (ms), every slot busy', {
      preemption: on.lat,
      '--no-preempt': off.lat,
    })],
    notes: [
      "The urgent job is assigned to the victim's node together with word to yield: the node starts it in the victim's slot at once, " +
      'while the victim gets up to --preempt-grace (1 s) to checkpoint before its attempt ends and it goes back to the queue.',
    ],
    ms: performance.now() - began,
  };
}

type MixRun = { makespanS: number; ioStart: number[]; cpuStart: number[]; perSecond: number };

/** A burst of I/O-bound (sleep) and CPU-bound (primes) jobs; how long until all are done and how long each waited to start. */
async function mix(ioSlots: number, k: { io: number; cpu: number }, tick: (deps: number) => void): Promise<MixRun> {
  return await withCluster(async (_c, nc) => {
    const tag = Date.now().toString(36);
    // Interleaved: a CPU job after every io/cpu I/O jobs, not grouped by kind.
    const every = Math.round(k.io / k.cpu) + 1;
    const jobs = Array.from(
      { length: k.io + k.cpu },
      (_, i) =>
        i % every === every - 1
          ? { id: `cpu-${tag}-${i}`, type: 'primes', input: { limit: 150_000, chunk: 10_000 } }
          : { id: `io-${tag}-${i}`, type: 'sleep', input: { ms: 500 } },
    );
    const t0 = Date.now();
    await window(jobs.length, 16, async (i) => void await callApi(nc, n, 'jobs.submit', jobs[i]));
    const done: JobRecord[] = [];
    await window(jobs.length, 64, async (i) => void done.push(await wait(nc, jobs[i]!.id)), tick);
    const end = Math.max(...done.map((r) => r.attempts.at(-1)!.endedAt!));
    return {
      makespanS: (end - t0) / 1000,
      perSecond: jobs.length / ((end - t0) / 1000),
      ioStart: done.filter((r) => r.type === 'sleep').map(firstStart),
      cpuStart: done.filter((r) => r.type === 'primes').map(firstStart),
    };
  }, ['--io-slots', String(ioSlots)]);
}

export async function phases(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = performance.now();
  const k = options.quick ? { io: 60, cpu: 12 } : { io: 180, cpu: 36 };
  const total = 2 * (k.io + k.cpu);
  const on = await mix(16, k, (d) => options.progress(d, total, 'phase-aware (--io-slots 16)'));
  const off = await mix(0, k, (d) => options.progress(k.io + k.cpu + d, total, 'phase-blind (--io-slots 0)'));
  const row = (figure: string, unit: string, a: number, b: number, higherIsBetter: boolean) => ({
    figure,
    unit,
    shoal: a,
    baseline: { name: '--io-slots 0', value: b },
    higherIsBetter,
  });
  return {
    scenario: 'phases',
    title: 'Phase-aware slots: I/O-bound and CPU-bound jobs mixed',
    setup: `${setup}; a burst of ${k.io} sleep(500 ms) jobs (they wait in ctx.phase('io')) and ${k.cpu} primes(150k) jobs, ` +
      'interleaved; phase-aware (--io-slots 16: a job waiting on I/O gives its compute slot back) vs phase-blind (--io-slots 0)',
    figures: [
      row('all done (makespan)', 's', on.makespanS, off.makespanS, false),
      row('jobs/s', '/s', on.perSecond, off.perSecond, true),
      row('CPU job submit → start p50', 'ms', pct(on.cpuStart, 50), pct(off.cpuStart, 50), false),
      row('CPU job submit → start p99', 'ms', pct(on.cpuStart, 99), pct(off.cpuStart, 99), false),
      row('I/O job submit → start p50', 'ms', pct(on.ioStart, 50), pct(off.ioStart, 50), false),
      row('I/O job submit → start p99', 'ms', pct(on.ioStart, 99), pct(off.ioStart, 99), false),
    ],
    samples: {
      'cpu start ms (phase-aware)': on.cpuStart,
      'cpu start ms (phase-blind)': off.cpuStart,
      'io start ms (phase-aware)': on.ioStart,
      'io start ms (phase-blind)': off.ioStart,
    },
    charts: [cdfChart('phases-cpu-start', 'CPU-bound job: submit → start (ms)', {
      'phase-aware': on.cpuStart,
      'phase-blind': off.cpuStart,
    })],
    ms: performance.now() - began,
  };
}
