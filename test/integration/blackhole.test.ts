// The leader's connection goes silent (blackholed) and its nats-server dies
// under it, on a 3-server cluster. The other servers at once answer "no
// responders" for the leader's subjects, while the leader, hearing nothing,
// still believes its lease valid. It must stop acting before anyone takes over:
// it suspends once it has had no round trip to its server for the contact
// timeout, and a follower confirms "no responders" on a cluster only after
// longer than that. Found by the chaos suite (seed 20261123, path 7).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { checkHistory } from '../../chaos/checker.ts';
import { TcpProxy } from '../../chaos/real/proxy.ts';
import { type NatsCluster, startCluster } from '../../harness/launcher.ts';
import { waitForReady, waitForStatus } from '../../harness/local.cluster.ts';
import { type NodeProcess, spawnNode } from '../../harness/spawn.ts';
import { LeaderWatch } from '../../harness/watch.ts';
import { defaults } from '../../base/defaults.ts';
import { readTransitions } from '../../nats/events.ts';
import { names } from '../../nats/subjects.ts';
import { until } from '../helpers.ts';

const n = names();
const ttl = 4000;

describe('a blackholed leader whose nats-server dies (3 servers, lease TTL 4 s)', () => {
  let cluster: NatsCluster;
  let link: TcpProxy;
  const nodes: NodeProcess[] = [];
  let nc: NatsConnection;

  before(async () => {
    cluster = await startCluster({ size: 3 });
    link = await TcpProxy.start({ port: cluster.servers[0]!.port });
    // n1 reaches only s1, through the proxy; it starts first, so it leads.
    nodes.push(spawnNode({ id: 'n1', nats: link.url, leaseTtlMs: ttl, replicas: 3, args: ['--no-discovery'] }));
    await waitForReady([cluster.servers[1]!.url], 1, { timeoutMs: 60_000 });
    for (const [i, id] of ['n2', 'n3'].entries()) {
      nodes.push(spawnNode({ id, nats: cluster.servers[i + 1]!.url, leaseTtlMs: ttl, replicas: 3, args: ['--no-discovery'] }));
    }
    await waitForReady([cluster.servers[1]!.url], 3, { timeoutMs: 60_000 });
    nc = await connect({ servers: [cluster.servers[1]!.url, cluster.servers[2]!.url] });
  });
  after(async () => {
    await nc?.close();
    await Promise.all(nodes.map((p) => p.stop()));
    await link?.close();
    await cluster?.stop();
  });

  test('the old leader suspends before a follower takes over; no action under its stale epoch', async () => {
    const s = await waitForStatus([cluster.servers[1]!.url], (v) => v.leader?.nodeId === 'n1', { what: 'n1 leading' });
    const watch = new LeaderWatch(nc, n);
    try {
      link.cut('blackhole');
      await cluster.kill(0);
      const cutAt = Date.now();
      const next = await watch.nextLeaderAction(s.leader!.epoch, 3 * ttl);
      assert.notEqual(next.node, 'n1');
      const suspended = await nodes[0]!.waitForLine(/no round trip to the nats-server .* suspending/, 5_000);
      const suspendedAt = Date.parse(suspended.slice(0, 24));
      assert.ok(suspendedAt < next.wall, `n1 suspended at ${suspendedAt}, the new leader acted at ${next.wall}`);
      assert.ok(next.wall - cutAt >= defaults.clusterProbeConfirmMs, `takeover ${next.wall - cutAt} ms after the cut`);
      // Bring n1's server back and heal, so n1's late events reach the stream; then judge the history.
      await cluster.restart(0);
      link.heal();
      await waitForStatus([cluster.servers[1]!.url], (v) => v.nodes.length === 3 && v.nodes.every((x) => x.state === 'ready'), {
        what: 'n1 back',
        timeoutMs: 30_000,
      });
      // Right after a server restart, JetStream may still be electing the stream's leader: read again until it answers.
      const history = await until('the event history', () => readTransitions(nc, n).catch(() => null), 30_000);
      const stale = checkHistory(history).filter((v) => v.invariant === 'stale-leader-acted' || v.invariant === 'one-leader-per-epoch');
      assert.deepEqual(stale.map((v) => v.message), []);
    } finally {
      watch.stop();
    }
  });
});
