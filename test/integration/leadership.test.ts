// Leadership among real node processes on a real nats-server: election,
// failover on kill -9, handoff on SIGTERM, and a paused (zombie) leader that
// must never act under its stale epoch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type NatsConnection } from '@nats-io/transport-node';
import { type LocalCluster, waitForLeader, waitForReady, waitForStatus } from '../../harness/local.cluster.ts';
import { LeaderWatch } from '../../harness/watch.ts';
import { isLeaderAction, readTransitions } from '../../nats/events.ts';
import { names } from '../../nats/subjects.ts';
import { until, withCluster } from '../helpers.ts';
import { sleep } from '../../base/time.ts';

const ttl = 1000;
const n = names();

describe('leadership on one nats-server, 3 node processes, lease TTL 1 s', () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  let watch: LeaderWatch;

  withCluster({ nodes: 3, leaseTtlMs: ttl, ready: false }, (fx) => ({ c, nc } = fx));
  before(() => {
    watch = new LeaderWatch(nc, n);
  });
  after(async () => {
    watch?.stop();
  });

  test('exactly one leader is elected and every node is ready', async () => {
    const s = await waitForReady(c.urls, 3);
    assert.ok(['n1', 'n2', 'n3'].includes(s.leader!.nodeId));
    const pids = new Map(c.nodes.map((p) => [p.id, p.pid]));
    for (const node of s.nodes) assert.equal(node.pid, pids.get(node.id), `status reports the real pid of ${node.id}`);
    const leaders = new Set(watch.seen.filter((t) => t.to.startsWith('active.leader')).map((t) => t.node));
    assert.equal(leaders.size, 1, `one node acted as leader, saw ${[...leaders].join(',')}`);
  });

  test('kill -9 of the leader: a live node leads under a higher epoch, well before the TTL', async () => {
    const before = (await waitForLeader(c.urls)).leader!;
    const victim = c.nodes.find((p) => p.id === before.nodeId)!;
    const killedAt = Date.now();
    await victim.kill();
    const next = await watch.nextLeaderAction(before.epoch, 10_000);
    assert.notEqual(next.node, victim.id);
    assert.ok(next.epoch! > before.epoch);
    // Generous regression bound; the benchmark reports the real distribution.
    assert.ok(next.wall - killedAt < ttl, `failover took ${next.wall - killedAt} ms`);
    // The dead node's own lease is reaped too, so it drops out of the list.
    await waitForStatus(c.urls, (v) => !v.nodes.some((x) => x.id === victim.id), {
      what: 'the dead node gone from the list',
      timeoutMs: 3 * ttl,
    });
    c.addNode(victim.id); // back to three for the next tests
    await waitForReady(c.urls, 3);
  });

  test('SIGTERM of the leader hands leadership over well under the TTL, and the node exits 0', async () => {
    const before = (await waitForLeader(c.urls)).leader!;
    const leaving = c.nodes.find((p) => p.id === before.nodeId && p.running)!;
    const at = Date.now();
    const exited = leaving.stop();
    const next = await watch.nextLeaderAction(before.epoch, 10_000);
    assert.notEqual(next.node, leaving.id);
    assert.ok(next.wall - at < ttl / 2, `handoff took ${next.wall - at} ms`);
    assert.equal((await exited).code, 0);
    c.addNode(leaving.id);
    await waitForReady(c.urls, 3);
  });

  test('a leader paused past its TTL is replaced, then steps down on waking and never acts under its stale epoch', async () => {
    const before = (await waitForLeader(c.urls)).leader!;
    const zombie = c.nodes.find((p) => p.id === before.nodeId && p.running)!;
    zombie.pause();
    // A paused process keeps its connection: pings time out, which is no evidence, so only the TTL frees the lease.
    const next = await watch.nextLeaderAction(before.epoch, 10_000);
    assert.notEqual(next.node, zombie.id);
    await sleep(ttl); // stay frozen well past the TTL
    zombie.resume();
    const steppedDown = await until(
      'the old leader to step down',
      async () => watch.seen.find((t) => t.node === zombie.id && t.from?.startsWith('active.leader') && !t.to.startsWith('active.leader')),
      10_000,
    );
    assert.ok(steppedDown);

    const history = await readTransitions(nc, n, { filter: (t) => t.kind === 'coordinator' });
    const firstNew = history.find((t) => t.node === next.node && t.epoch === next.epoch && t.to.startsWith('active.leader'))!;
    assert.ok(firstNew, 'the new leader is in the stored history');
    // Judge by when each transition happened (wall clock, one host), not by when its event reached the
    // stream: a frozen process publishes what it did before the freeze only after it wakes.
    const staleActs = history.filter((t) =>
      t.node === zombie.id && t.epoch === before.epoch && isLeaderAction(t) && t.wall > firstNew.wall
    );
    assert.deepEqual(staleActs, [], 'no action under the stale epoch after the new leader started');
    // Its leader lease ended; a renewal it had sent before the freeze may confirm on waking, but its
    // deadline (counted from the send) has passed, so it is lost at once and never acted on.
    const leaseHistory = await readTransitions(nc, n, { filter: (t) => t.kind === 'lease' && t.actor === `${zombie.id}-leader` });
    const afterTakeover = leaseHistory.filter((t) => t.wall > firstNew.wall);
    assert.ok(afterTakeover.some((t) => t.to === 'lost' || t.to === 'released'), 'the stale lease ended');
    const renewals = afterTakeover.filter((t) => t.from === 'held.confirmed.renewing' && t.to === 'held.confirmed.waiting');
    for (const r of renewals) {
      const next = afterTakeover.find((t) => t.seq > r.seq);
      assert.ok(
        next && (next.to === 'lost' || next.to === 'held.releasing'),
        `a late renewal is followed at once by the loss: ${JSON.stringify(afterTakeover.map((t) => t.to))}`,
      );
    }
  });
});
