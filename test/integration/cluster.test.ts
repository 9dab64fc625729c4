// A 3-server JetStream cluster (replicas 3): leadership keeps working when
// one nats-server is killed with SIGKILL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { withCluster } from '../helpers.ts';
import { type NatsConnection } from '@nats-io/transport-node';
import { type LocalCluster, waitForReady, waitForStatus } from '../../harness/local.cluster.ts';
import { LeaderWatch } from '../../harness/watch.ts';
import { names } from '../../nats/subjects.ts';

const n = names();

describe('3-server cluster, replicas 3, lease TTL 20 s (the replicated default)', () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  let watch: LeaderWatch;

  withCluster(
    { nodes: 3, cluster: 3, leaseTtlMs: undefined, ready: false, connect: { maxReconnectAttempts: -1, reconnectTimeWait: 100 } },
    (fx) => ({ c, nc } = fx),
  );
  before(() => {
    watch = new LeaderWatch(nc, n);
  });
  after(async () => {
    watch?.stop();
  });

  test('kill -9 of one nats-server: a leader remains, every node stays a member, and failover still works', async () => {
    const first = await waitForReady(c.urls, 3, { timeoutMs: 60_000 }).catch((err: Error) => {
      throw new Error(`${err.message}\n${c.logs()}`);
    });
    // The first server is every node's first URL: most connections must move.
    await c.servers[0]!.kill('SIGKILL');
    const after1 = await waitForStatus(c.urls, (s) => s.leader !== null && s.nodes.length === 3, {
      what: 'a leader after the server kill',
      timeoutMs: 30_000,
    });
    assert.ok(after1.leader);
    const fenced = watch.seen.filter((t) =>
      t.kind === 'coordinator' && t.from?.startsWith('active.leader') && !t.to.startsWith('active.leader')
    );
    assert.equal(
      fenced.length,
      0,
      `the leader did not lose its lease to a single server failure: ${JSON.stringify(fenced)}\n${
        c.nodes.map((p) => `--- ${p.id}\n${p.output().split('\n').slice(-25).join('\n')}`).join('\n')
      }`,
    );
    assert.equal(after1.leader!.epoch, first.leader!.epoch, 'same leader term');

    // Leadership still moves on a node failure with one server down.
    const victim = c.nodes.find((p) => p.id === after1.leader!.nodeId)!;
    await victim.kill();
    const next = await watch.nextLeaderAction(after1.leader!.epoch, 30_000);
    assert.notEqual(next.node, victim.id);

    await c.servers[0]!.restart();
    const s = await waitForStatus(c.urls, (v) => v.leader !== null, { what: 'a leader after the server restart', timeoutMs: 30_000 });
    assert.equal(s.leader!.nodeId, next.node);
  });
});
