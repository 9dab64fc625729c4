// Failover benchmark (not a test): kill -9 the leader of a 3-node cluster N
// times with lease TTL 1 s, with the failover fast path on and off, and stop
// it with SIGTERM N times; report min/median/p95 of the time from the signal
// to the new leader's first action (its first transition under the new epoch).
import { connect } from '@nats-io/transport-node';
import Table from 'cli-table3';
import { startLocalCluster, waitForReady } from '../harness/local.cluster.ts';
import { LeaderWatch } from '../harness/watch.ts';
import { defaults } from '../streams/defaults.ts';
import { names } from '../streams/subjects.ts';
import { pct } from './measure.ts';

const rounds = Number(process.env.ROUNDS ?? process.argv[2] ?? 20);
const ttl = defaults.demoLeaseTtlMs;
const n = names();

type Mode = { name: string; signal: 'SIGKILL' | 'SIGTERM'; fastPath: boolean };
const modes: Mode[] = [
  { name: 'kill -9, fast path on', signal: 'SIGKILL', fastPath: true },
  { name: 'kill -9, fast path off (TTL only)', signal: 'SIGKILL', fastPath: false },
  { name: 'SIGTERM (graceful handoff)', signal: 'SIGTERM', fastPath: true },
];

async function measure(mode: Mode): Promise<number[]> {
  const c = await startLocalCluster({ nodes: 3, cluster: 1, port: 0, leaseTtlMs: ttl, nodeArgs: mode.fastPath ? [] : ['--no-fast-path'] });
  const nc = await connect({ servers: c.urls });
  const watch = new LeaderWatch(nc, n);
  const out: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      // Every round starts from the same shape: a leader and three ready nodes.
      const leader = (await waitForReady(c.urls, 3)).leader!;
      // Let renewals settle into their rhythm, at a random phase.
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 400));
      const victim = c.nodes.find((p) => p.id === leader.nodeId && p.running)!;
      const at = Date.now();
      if (mode.signal === 'SIGKILL') void victim.kill();
      else void victim.stop();
      const next = await watch.nextLeaderAction(leader.epoch, 10 * ttl);
      out.push(next.wall - at);
      await victim.exited;
      c.addNode(victim.id);
      process.stderr.write(`  ${mode.name}: round ${i + 1}/${rounds}: ${next.wall - at} ms\n`);
    }
  } finally {
    watch.stop();
    await nc.close();
    await c.stop();
  }
  return out;
}

const t = new Table({
  head: ['scenario (3 nodes, TTL 1000 ms)', 'rounds', 'min ms', 'median ms', 'p95 ms', 'max ms'],
  style: { head: [], border: [] },
});
const results: Record<string, number[]> = {};
for (const mode of modes) {
  const xs = (await measure(mode)).sort((a, b) => a - b);
  results[mode.name] = xs;
  t.push([mode.name, xs.length, xs[0], pct(xs, 50), pct(xs, 95), xs[xs.length - 1]]);
}
process.stdout.write(`${t.toString()}\n`);
process.stdout.write(`${JSON.stringify({ ttlMs: ttl, rounds, results })}\n`);
