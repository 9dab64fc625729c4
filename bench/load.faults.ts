// Load under faults: a steady stream of short jobs while the leader dies and a
// worker stalls past its lease; exactly-once checked per record and by the
// chaos checker over the whole history.
import { checkHistory } from '../chaos/checker.ts';
import { waitForReady } from '../harness/local.cluster.ts';
import type { JobRecord } from '../api/contract.ts';
import { callApi } from '../nats/client.ts';
import { readTransitions } from '../nats/events.ts';
import { n, type ScenarioOptions, setup, sleepMs, ttl, window, withCluster } from './common.ts';
import { pct } from './measure.ts';
import { type ScenarioResult, timelineChart } from './report.ts';

/**
 * A steady stream of short jobs while the leader is SIGKILLed (and restarted)
 * and a worker is paused (SIGSTOP) past its lease, then resumed: what gets
 * through, how long starts stall, and whether every job still ran exactly once
 * (each record, and the chaos checker over the whole event history).
 */
export async function loadUnderFaults(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = performance.now();
  const seconds = options.quick ? 12 : 30;
  // The hot path's goal: 1,000 jobs/s offered through both faults (the auction design was tested at 40).
  const rate = options.quick ? 200 : 1_000;
  const jobMs = 5;
  const job = { type: 'sleep', input: { ms: jobMs } };
  return await withCluster(async (c, nc) => {
    const tag = Date.now().toString(36);
    const t0 = Date.now();
    const marks: Array<{ s: number; label: string }> = [];
    const mark = (label: string) => marks.push({ s: (Date.now() - t0) / 1000, label });
    const faults = (async () => {
      await sleepMs((seconds * 1000) / 3);
      const leader = (await waitForReady(c.urls, 3)).leader!;
      const victim = c.nodes.find((p) => p.id === leader.nodeId && p.running)!;
      mark(`kill -9 leader ${victim.id}`);
      await victim.kill();
      c.addNode(victim.id);
      await sleepMs(Math.max(0, t0 + (2 * seconds * 1000) / 3 - Date.now()));
      const view = await waitForReady(c.urls, 3);
      const worker = c.nodes.find((p) => p.running && p.id !== view.leader?.nodeId)!;
      mark(`SIGSTOP ${worker.id}`);
      worker.pause();
      await sleepMs(2.5 * ttl);
      worker.resume();
      mark(`SIGCONT ${worker.id}`);
    })();
    const total = seconds * rate;
    const idOf = (i: number) => `lf-${tag}-${i}`;
    // A submit the failover leaves unanswered is sent again under the same id (a duplicate is answered created: false).
    const submit = async (i: number): Promise<void> => {
      for (let tries = 1;; tries++) {
        try {
          return void await callApi(nc, n, 'jobs.submit', { ...job, id: idOf(i) });
        } catch (err) {
          if (tries >= 20) throw err;
          resent++;
          await sleepMs(100);
        }
      }
    };
    let resent = 0;
    const submits: Array<Promise<void>> = [];
    for (let i = 0; i < total; i++) {
      await sleepMs(Math.max(0, t0 + (i * 1000) / rate - Date.now()));
      submits.push(submit(i));
      if (i % 50 === 0) {
        options.progress(
          i + 1,
          2 * total,
          `${rate} jobs/s for ${seconds} s, leader killed at ${seconds / 3} s, a worker paused at ${(2 * seconds) / 3} s`,
        );
      }
    }
    await Promise.all(submits);
    await faults;
    // Then every record, once final (waits 256 at a time: a wait per job at once would pass the per-process cap).
    const records: JobRecord[] = new Array(total);
    await window(total, 256, async (i) => {
      records[i] = await callApi(nc, n, 'jobs.wait', { id: idOf(i), timeoutMs: 120_000 }, 125_000);
    }, (done) => done % 500 === 0 && options.progress(total + done, 2 * total, 'waiting for every job to finish'));
    options.progress(2 * total - 1, 2 * total, 'checking the history');
    const history = await readTransitions(nc, n);
    const violations = checkHistory(history, { records });
    const succeeded = records.filter((r) => r.state === 'succeeded');
    const once = records.filter((r) => r.attempts.filter((a) => a.outcome === 'succeeded').length === 1).length;
    const starts = records.flatMap((r) => r.attempts.filter((a) => a.startedAt !== null).map((a) => a.startedAt!)).sort((a, b) => a - b);
    const lat = records.map((r) => r.attempts.find((a) => a.startedAt !== null)!.startedAt! - r.createdAt);
    const ends = succeeded.map((r) => r.attempts.find((a) => a.outcome === 'succeeded')!.endedAt!);
    const perSecond = succeeded.length / ((Math.max(...ends) - t0) / 1000);
    let gap = 0;
    for (let i = 1; i < starts.length; i++) gap = Math.max(gap, starts[i]! - starts[i - 1]!);
    const moved = records.filter((r) => r.attempts.length > 1).length;
    const binMs = 250;
    const bins = new Map<number, number>();
    for (const t of starts) bins.set(Math.floor((t - t0) / binMs), (bins.get(Math.floor((t - t0) / binMs)) ?? 0) + 1);
    const last = Math.max(...bins.keys());
    return {
      scenario: 'load-under-faults',
      title: 'Load under faults: a steady stream while the leader dies and a worker stalls',
      setup: `${setup}; ${rate} sleep(${jobMs} ms) jobs/s for ${seconds} s; the leader SIGKILLed (and restarted) at ${
        seconds / 3
      } s, a worker SIGSTOPped for ${2.5 * ttl} ms (past its lease) at ${(2 * seconds) / 3} s`,
      figures: [
        { figure: 'jobs succeeded', unit: '', shoal: succeeded.length, baseline: { name: 'submitted', value: total } },
        {
          figure: 'succeeded exactly once',
          unit: '',
          shoal: once,
          baseline: { name: 'submitted', value: total },
          goal: { text: 'all', met: once === total },
        },
        {
          figure: 'chaos checker violations over the whole history',
          unit: '',
          shoal: violations.length,
          higherIsBetter: false,
          goal: { text: '0', met: violations.length === 0 },
        },
        { figure: 'jobs/s finished', unit: '/s', shoal: perSecond, baseline: { name: 'offered', value: rate } },
        { figure: 'submit → start p50', unit: 'ms', shoal: pct(lat, 50), higherIsBetter: false },
        { figure: 'submit → start p99', unit: 'ms', shoal: pct(lat, 99), higherIsBetter: false },
        {
          figure: 'longest gap between job starts',
          unit: 'ms',
          shoal: gap,
          baseline: { name: 'between submits', value: 1000 / rate },
          higherIsBetter: false,
        },
        { figure: 'jobs that ran more than one attempt', unit: '', shoal: moved },
        { figure: 'submits sent again (unanswered during the failover)', unit: '', shoal: resent },
      ],
      samples: { 'submit→start ms': lat },
      charts: [
        timelineChart(
          'load-under-faults-starts',
          `job starts per ${binMs} ms, with the faults`,
          Array.from({ length: last + 1 }, (_, b) => ({ s: (b * binMs) / 1000, count: bins.get(b) ?? 0 })),
          marks,
          'starts',
        ),
      ],
      notes: violations.length ? violations.slice(0, 5).map((v) => `violation: ${v.invariant}: ${v.message}`) : [],
      ms: performance.now() - began,
    };
  });
}
