// `shoal demo`: the walking skeleton end to end. Start a local cluster, kill
// the leader with SIGKILL, then stop the next one with SIGTERM, and check
// that leadership moved each time to a live node under a higher epoch.
import { say } from '../base/output.ts';
import { connect } from '@nats-io/transport-node';
import { names } from '../nats/subjects.ts';
import { callApi } from '../nats/client.ts';
import { startLocalCluster, waitForReady, waitForStatus } from '../harness/local.cluster.ts';
import { type Check, reportChecks } from './checks.ts';
import { formatStatus } from './status.ts';
import { LeaderWatch } from '../harness/watch.ts';

export async function runDemo(options: { leaseTtlMs: number }): Promise<number> {
  const started = Date.now();
  say(`Starting 1 nats-server and 3 node processes (lease TTL ${options.leaseTtlMs} ms)...`);
  const c = await startLocalCluster({ nodes: 3, cluster: 1, port: 0, leaseTtlMs: options.leaseTtlMs, echo: false });
  const n = names();
  const nc = await connect({ servers: c.urls });
  const watch = new LeaderWatch(nc, n);
  const checks: Check[] = [];
  try {
    const first = await waitForReady(c.urls, 3);
    say(`\n${formatStatus(first)}\n`);
    const leader1 = first.leader!;

    // 1. SIGKILL the leader: its connection drops, followers see "no responders".
    const victim = c.nodes.find((p) => p.id === leader1.nodeId)!;
    say(`kill -9 ${victim.id} (pid ${victim.pid}), the leader...`);
    const killedAt = Date.now();
    await victim.kill();
    const second = await watch.nextLeaderAction(leader1.epoch, 5 * options.leaseTtlMs);
    const failoverMs = second.wall - killedAt;
    say(`  ${second.node} leads under epoch ${second.epoch}, first action ${failoverMs} ms after the kill`);
    checks.push({
      what: 'new leader after kill -9',
      ok: second.node !== victim.id && second.epoch! > leader1.epoch,
      detail: `${second.node}, epoch ${leader1.epoch} → ${second.epoch}`,
    });
    checks.push({
      what: 'failover faster than one lease TTL',
      ok: failoverMs < options.leaseTtlMs,
      detail: `${failoverMs} ms (TTL ${options.leaseTtlMs} ms)`,
    });

    // The dead node's liveness lease goes too (reaped early by the new leader).
    const view = await waitForStatus(c.urls, (v) => !v.nodes.some((x) => x.id === victim.id), { timeoutMs: 3 * options.leaseTtlMs })
      .catch(() => callApi(nc, n, 'status'));
    checks.push({
      what: 'dead node leaves the node list',
      ok: !view.nodes.some((x) => x.id === victim.id),
      detail: `${Date.now() - killedAt} ms after the kill`,
    });
    say(`\n${formatStatus(view)}\n`);

    // 2. SIGTERM the new leader: it releases its lease, a follower takes it at once.
    const leaving = c.nodes.find((p) => p.id === second.node)!;
    say(`SIGTERM ${leaving.id} (pid ${leaving.pid}), the new leader...`);
    const termAt = Date.now();
    const exitP = leaving.stop();
    const third = await watch.nextLeaderAction(second.epoch!, 5 * options.leaseTtlMs);
    const handoffMs = third.wall - termAt;
    const exit = await exitP;
    say(
      `  ${third.node} leads under epoch ${third.epoch}, ${handoffMs} ms after the SIGTERM; ${leaving.id} exited with ${
        exit.code ?? exit.signal
      }`,
    );
    checks.push({
      what: 'graceful handoff on SIGTERM',
      ok: third.node !== leaving.id && third.epoch! > second.epoch!,
      detail: `${third.node}, epoch ${second.epoch} → ${third.epoch}`,
    });
    checks.push({ what: 'handoff well under the TTL', ok: handoffMs < options.leaseTtlMs / 2, detail: `${handoffMs} ms` });
    checks.push({ what: 'drained node exits 0', ok: exit.code === 0, detail: `exit ${exit.code ?? exit.signal}` });

    const final = await waitForReady(c.urls, 1);
    say(`\n${formatStatus(final)}\n`);
  } catch (err) {
    checks.push({ what: 'demo ran to the end', ok: false, detail: (err as Error).message });
    for (const p of c.nodes) process.stderr.write(`--- ${p.id} output ---\n${p.output().split('\n').slice(-30).join('\n')}\n`);
  } finally {
    watch.stop();
    await nc.close();
    await c.stop();
  }

  return reportChecks(checks, started);
}
