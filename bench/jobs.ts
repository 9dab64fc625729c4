// Job benchmarks (not tests), 3 node processes on one nats-server:
// 1. scheduling overhead: submit → handler start for `noop` (createdAt → attempt startedAt), light load;
// 2. throughput: `noop` jobs/s, beside a plain JetStream work-queue consumer doing the same count;
// 3. recovery: a `primes` job whose node is killed at 25/50/75 %: total time vs an uninterrupted run
//    plus a restart from zero, and the work redone.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import Table from 'cli-table3';
import { type LocalCluster, startLocalCluster, waitForReady } from '../harness/local.cluster.ts';
import type { JobRecord } from '../machines/job.machine.ts';
import { callApi } from '../streams/client.ts';
import { names } from '../streams/subjects.ts';
import { pct, say, throughput, writesPerJob } from './measure.ts';

const N = Number(process.env.JOBS ?? 2000);
const n = names();

async function overhead(nc: NatsConnection, tag: string): Promise<number[]> {
  const inFlight = new Set<Promise<void>>();
  const lat: number[] = [];
  for (let i = 0; i < N; i++) {
    const p = (async () => {
      const { id } = await callApi<{ id: string }>(nc, n, 'jobs.submit', { type: 'noop', id: `ov-${tag}-${i}` });
      const r = await callApi<JobRecord>(nc, n, 'jobs.wait', { id, timeoutMs: 60_000 }, 65_000);
      lat.push(r.attempts[0]!.startedAt! - r.createdAt);
    })();
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 4) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return lat;
}

/** The floor NATS sets: publish N messages to a work queue, 3 pull consumers ack them. */
async function workQueueFloor(nc: NatsConnection): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const name = `bench_wq_${Date.now()}`;
  await jsm.streams.add({ name, subjects: [`${name}.>`], retention: RetentionPolicy.Workqueue });
  await jsm.consumers.add(name, { durable_name: 'w', ack_policy: AckPolicy.Explicit });
  const js = jetstream(nc);
  const start = performance.now();
  let acked = 0;
  const done = new Promise<void>((resolve) => {
    for (let w = 0; w < 3; w++) {
      void (async () => {
        const c = await js.consumers.get(name, 'w');
        const msgs = await c.consume({ max_messages: 256 });
        for await (const m of msgs) {
          m.ack();
          if (++acked >= N) {
            resolve();
            break;
          }
        }
      })();
    }
  });
  for (let i = 0; i < N; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, N - i) }, (_, k) => js.publish(`${name}.job`, new TextEncoder().encode(String(i + k)))),
    );
  }
  await done;
  const rate = N / ((performance.now() - start) / 1000);
  await jsm.streams.delete(name);
  return rate;
}

async function recovery(c: LocalCluster, nc: NatsConnection, tag: string) {
  const input = { limit: 600_000, chunk: 20_000, pauseMs: 100 };
  const run = async (id: string, killAt: number | null) => {
    await callApi(nc, n, 'jobs.submit', { type: 'primes', id, input });
    let progressAtKill = 0;
    if (killAt !== null) {
      for (;;) {
        const r = await callApi<JobRecord>(nc, n, 'jobs.get', { id });
        if (r.state === 'running' && r.progress >= killAt) {
          // Kill somewhere between two checkpoints, not right after one.
          await new Promise((res) => setTimeout(res, Math.random() * 100));
          progressAtKill = (await callApi<JobRecord>(nc, n, 'jobs.get', { id })).progress;
          const victim = c.nodes.find((p) => p.id === r.owner && p.running)!;
          await victim.kill();
          c.addNode(victim.id);
          break;
        }
        await new Promise((res) => setTimeout(res, 20));
      }
    }
    const r = await callApi<JobRecord>(nc, n, 'jobs.wait', { id, timeoutMs: 120_000 }, 125_000);
    const last = r.attempts[r.attempts.length - 1]!;
    return { totalMs: r.attempts[r.attempts.length - 1]!.endedAt! - r.createdAt, progressAtKill, resumedFrom: last.resumedFrom };
  };
  const base = await run(`rc-${tag}-base`, null);
  const rows: Array<[string, number, number, number, string]> = [];
  for (const at of [0.25, 0.5, 0.75]) {
    await waitForReady(c.urls, 3);
    const r = await run(`rc-${tag}-${Math.round(at * 100)}`, at);
    const fromZero = Math.round(r.progressAtKill * base.totalMs + base.totalMs);
    // Work redone is at most the chunk after the last checkpoint; extra time = failover + that chunk.
    rows.push([`${at * 100}%`, r.totalMs, Math.round(base.totalMs), fromZero, `${Math.round(r.resumedFrom * 100)}%`]);
  }
  return rows;
}

const c = await startLocalCluster({ nodes: 3, cluster: 1, port: 0, leaseTtlMs: 1000 });
const nc = await connect({ servers: c.urls });
const tag = Date.now().toString(36);
try {
  await waitForReady(c.urls, 3);
  say(`overhead: ${N} noop jobs, 4 in flight...`);
  const lat = await overhead(nc, tag);
  say(`throughput: ${N} noop jobs...`);
  const { result: jobsPerS, perJob } = await writesPerJob(nc, n, N, () => throughput(nc, n, N, tag));
  say(`work-queue floor: ${N} messages...`);
  const wqPerS = await workQueueFloor(nc);
  say('recovery: primes killed at 25/50/75 %...');
  const rec = await recovery(c, nc, tag);

  const t1 = new Table({
    head: [`submit → handler start, noop, ${N} jobs`, 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
    style: { head: [], border: [] },
  });
  t1.push(['3 nodes, one nats-server', pct(lat, 50), pct(lat, 95), pct(lat, 99), Math.max(...lat)]);
  const t2 = new Table({ head: ['throughput', 'per second', 'ratio'], style: { head: [], border: [] } });
  t2.push([`Shoal noop jobs (${N}, submit → succeeded)`, Math.round(jobsPerS), (jobsPerS / wqPerS).toFixed(3)]);
  t2.push([`JetStream work queue (${N} msgs, 3 consumers)`, Math.round(wqPerS), '1']);
  const t3 = new Table({
    head: ['primes 600k killed at', 'total ms', 'uninterrupted ms', 'restart from zero ms (est.)', 'resumed from'],
    style: { head: [], border: [] },
  });
  for (const r of rec) t3.push(r);
  const t4 = new Table({ head: [`stored per noop job (throughput run, ${N} jobs)`, 'per job'], style: { head: [], border: [] } });
  for (const [what, k] of Object.entries(perJob)) t4.push([what, k.toFixed(2)]);
  process.stdout.write(`${t1.toString()}\n${t2.toString()}\n${t4.toString()}\n${t3.toString()}\n`);
} finally {
  await nc.close();
  await c.stop();
}
