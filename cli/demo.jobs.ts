// `shoal demo`: the main job end to end. 3 node processes run 30 `primes`
// jobs; the leader and then a busy worker are killed with SIGKILL mid-run
// (a supervisor restarts them); every job must finish exactly once with the
// true count. Exits non-zero if any check fails.
import { say } from '../base/output.ts';
import Table from 'cli-table3';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { JobRecord } from '../api/contract.ts';
import { callApi } from '../nats/client.ts';
import { type Names, names } from '../nats/subjects.ts';
import { countPrimes } from '../node/handlers.ts';
import { type Check, reportChecks } from './checks.ts';
import { formatStatus } from './status.ts';
import { type LocalCluster, startLocalCluster, waitForReady } from '../harness/local.cluster.ts';
import { LeaderWatch } from '../harness/watch.ts';
import { sleep } from '../base/time.ts';

type Demo = { c: LocalCluster; nc: NatsConnection; n: Names; watch: LeaderWatch; leaseTtlMs: number };

/** SIGKILL the leader while it runs jobs; a supervisor restarts it. Returns the next leader's first action and when. */
async function killLeader(deps: Demo, leader: { nodeId: string; epoch: number }) {
  const victim = deps.c.nodes.find((p) => p.id === leader.nodeId)!;
  say(`kill -9 ${victim.id} (pid ${victim.pid}), the leader, while it runs jobs...`);
  const killedAt = Date.now();
  await victim.kill();
  const next = await deps.watch.nextLeaderAction(leader.epoch, 10 * deps.leaseTtlMs);
  const failoverMs = next.wall - killedAt;
  say(`  ${next.node} leads under epoch ${next.epoch}, ${failoverMs} ms after the kill; restarting ${victim.id}`);
  deps.c.addNode(victim.id);
  return { victim: victim.id, next, failoverMs };
}

/** SIGKILL the busiest worker that is not the leader; restart it. */
async function killBusyWorker(deps: Demo, leaderId: string): Promise<void> {
  const view = await callApi(deps.nc, deps.n, 'status');
  const busy = view.nodes.filter((x) => x.id !== leaderId && x.running > 0).sort((a, b) => b.running - a.running)[0];
  const worker = deps.c.nodes.find((p) => p.id === busy?.id && p.running);
  if (!worker) return;
  say(`kill -9 ${worker.id} (pid ${worker.pid}), a worker running ${busy!.running} jobs...; restarting it`);
  await worker.kill();
  deps.c.addNode(worker.id);
}

/** The results table and the checks on them. */
function judge(records: JobRecord[], limits: number[]): Check[] {
  const t = new Table({ head: ['job', 'limit', 'count', 'correct', 'attempts', 'resumed from'], style: { head: [], border: [] } });
  let wrong = 0;
  let notOnce = 0;
  for (const [i, r] of records.entries()) {
    const count = (r.result as { count?: number } | null)?.count;
    const ok = r.state === 'succeeded' && count === countPrimes(limits[i]!);
    if (!ok) wrong++;
    if (r.attempts.filter((a) => a.outcome === 'succeeded').length !== 1) notOnce++;
    const resumed = r.attempts.filter((a) => a.resumedFrom > 0).map((a) => `${Math.round(a.resumedFrom * 100)}%`);
    t.push([
      r.id.slice(-2),
      limits[i],
      count ?? r.state,
      ok ? 'yes' : 'NO',
      r.attempts.map((a) => `${a.node}:${a.outcome}`).join(' '),
      resumed.join(', '),
    ]);
  }
  say(t.toString());
  say('(A killed node is restarted under its own id as a new process: `n1:orphaned n1:succeeded` is a job that new process resumed.)');
  const resumed = records.filter((r) => r.attempts.some((a) => a.resumedFrom > 0));
  const moved = movedJobs(records);
  const from = resumed.map((r) => Math.round(Math.max(...r.attempts.map((a) => a.resumedFrom)) * 100));
  return [
    { what: 'every job succeeded with the true prime count', ok: wrong === 0, detail: `${records.length - wrong}/${records.length}` },
    {
      what: 'every job completed exactly once',
      ok: notOnce === 0,
      detail: `${records.length - notOnce}/${records.length} with one successful attempt`,
    },
    {
      what: 'jobs of killed processes moved on',
      ok: moved.orphaned > 0,
      detail: `${moved.orphaned} jobs lost their process: ${moved.elsewhere} resumed on another node, ${
        moved.orphaned - moved.elsewhere
      } by the restarted process of the same node id`,
    },
    { what: 'moved jobs resumed from checkpoints', ok: resumed.length > 0, detail: `${resumed.length} resumed, from ${from.join('%, ')}%` },
  ];
}

export async function runJobsDemo(options: { leaseTtlMs: number; jobs: number }): Promise<number> {
  const started = Date.now();
  const n = names();
  say(`Starting 1 nats-server and 3 node processes (lease TTL ${options.leaseTtlMs} ms, 4 slots each)...`);
  const c = await startLocalCluster({ nodes: 3, cluster: 1, port: 0, leaseTtlMs: options.leaseTtlMs, echo: false });
  const nc = await connect({ servers: c.urls });
  const d: Demo = { c, nc, n, watch: new LeaderWatch(nc, n), leaseTtlMs: options.leaseTtlMs };
  const checks: Check[] = [];
  const limits = Array.from({ length: options.jobs }, (_, i) => 150_000 + 5_000 * i);
  try {
    const first = await waitForReady(c.urls, 3);
    say(`\n${formatStatus(first)}\n`);
    say(`Submitting ${options.jobs} primes jobs (limits ${limits[0]}..${limits[limits.length - 1]}, checkpoint every 10,000 numbers)...`);
    const tag = Date.now().toString(36);
    const ids = await Promise.all(limits.map(async (limit, i) =>
      (await callApi(nc, n, 'jobs.submit', {
        type: 'primes',
        id: `demo-${tag}-${String(i).padStart(2, '0')}`,
        input: { limit, chunk: 10_000, pauseMs: 150 },
      })).id
    ));
    await sleep(2_000);
    const failover = await killLeader(d, first.leader!);
    await sleep(2_500);
    await killBusyWorker(d, failover.next.node);
    say('Waiting for every job...');
    const records: JobRecord[] = [];
    for (const id of ids) records.push(await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 120_000 }, 125_000));
    checks.push(...judge(records, limits), {
      what: 'leader failover after kill -9',
      ok: failover.next.node !== failover.victim && failover.failoverMs < options.leaseTtlMs,
      detail: `${failover.failoverMs} ms (TTL ${options.leaseTtlMs} ms)`,
    });
  } catch (err) {
    checks.push({ what: 'demo ran to the end', ok: false, detail: (err as Error).message });
    process.stderr.write(`${c.logs(30)}\n`);
  } finally {
    d.watch.stop();
    await nc.close();
    await c.stop();
  }
  return reportChecks(checks, started);
}

/** Jobs whose process died under them (an `orphaned` attempt), and how many of those the next attempt ran on another node id. */
export function movedJobs(records: JobRecord[]): { orphaned: number; elsewhere: number } {
  let orphaned = 0;
  let elsewhere = 0;
  for (const r of records) {
    const lost = r.attempts.flatMap((a, i) => (a.outcome === 'orphaned' ? [{ from: a.node, next: r.attempts[i + 1]?.node }] : []));
    if (lost.length === 0) continue;
    orphaned++;
    if (lost.some((l) => l.next !== undefined && l.next !== l.from)) elsewhere++;
  }
  return { orphaned, elsewhere };
}
