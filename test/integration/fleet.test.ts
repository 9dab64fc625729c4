// `shoal node --id v --count K`: K node actors in one process, each a member
// of its own (lease, slots, coordinator candidate). Killing the process takes
// all K out of status on the fast path, and their jobs resume elsewhere from
// their checkpoints.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type NatsConnection } from '@nats-io/transport-node';
import { countPrimes } from '../../node/handlers.ts';
import { type LocalCluster, waitForReady, waitForStatus } from '../../harness/local.cluster.ts';
import { type NodeProcess, spawnNode } from '../../harness/spawn.ts';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { until, withCluster } from '../helpers.ts';

const n = names();
const K = 20;

describe(`processes hosting 100 and ${K} virtual nodes beside one ordinary node, lease TTL 5 s`, () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  const fleets: NodeProcess[] = [];

  // A long TTL: the K nodes must leave by the fast path (unanswered pings), not by their leases expiring.
  withCluster({
    nodes: 1,
    leaseTtlMs: 5000,
    slots: 1,
    nodeArgs: ['--io-slots', '0', '--no-preempt'],
  }, (fx) => ({ c, nc } = fx));
  after(async () => {
    await Promise.all(fleets.map((p) => p.kill()));
  });

  test(`100 virtual nodes join with their own ids and leases; kill -9 takes all 100 out of status before their leases expire`, async () => {
    const fleet = spawnNode({ id: 'h', nats: c.urls[0]!, slots: 1, args: ['--count', '100', '--io-slots', '0', '--no-preempt'] });
    fleets.push(fleet);
    const s = await waitForReady(c.urls, 101, { timeoutMs: 120_000 });
    assert.equal(new Set(s.nodes.filter((x) => x.id.startsWith('h-')).map((x) => x.epoch)).size, 100, 'a lease each');
    const t0 = Date.now();
    await fleet.kill();
    await waitForStatus(c.urls, (v) => v.nodes.length === 1, { what: 'only n1 left', timeoutMs: 15_000 });
    const leftMs = Date.now() - t0;
    assert.ok(leftMs < 5_000, `all 100 left in ${leftMs} ms, before their 5 s leases expired: the fast path`);
    process.stdout.write(`# 100 virtual nodes: ready after start, gone ${leftMs} ms after kill -9\n`);
  });

  test(`all ${K} join with ids v-1 … v-${K}, one pid; kill -9 takes them all out within seconds; their jobs resume on n1`, async () => {
    const fleet = spawnNode({ id: 'v', nats: c.urls[0]!, slots: 1, args: ['--count', String(K), '--io-slots', '0', '--no-preempt'] });
    fleets.push(fleet);
    const s = await waitForReady(c.urls, K + 1, { timeoutMs: 60_000 });
    const virtual = s.nodes.filter((x) => x.id.startsWith('v-'));
    assert.deepEqual(virtual.map((x) => x.id).sort(), Array.from({ length: K }, (_, i) => `v-${i + 1}`).sort());
    assert.ok(virtual.every((x) => x.pid === fleet.pid && x.slots === 1));

    const limit = 300_000;
    const ids = ['f1', 'f2', 'f3', 'f4'];
    for (const id of ids) await callApi(nc, n, 'jobs.submit', { id, type: 'primes', input: { limit, chunk: 20_000, pauseMs: 100 } });
    // n1 has one slot: at least three run on virtual nodes; wait until those checkpointed.
    const onFleet = await until('jobs checkpointed on virtual nodes', async () => {
      const rs = await Promise.all(ids.map((id) => callApi(nc, n, 'jobs.get', { id })));
      const there = rs.filter((r) => r.state === 'running' && r.owner?.startsWith('v-') && r.progress > 0.1);
      return there.length >= 3 ? there : null;
    }, 30_000);

    const t0 = Date.now();
    await fleet.kill();
    await waitForStatus(c.urls, (v) => v.nodes.length === 1 && v.leader?.nodeId === 'n1', { what: 'only n1 left', timeoutMs: 15_000 });
    const leftMs = Date.now() - t0;
    assert.ok(leftMs < 5_000, `all ${K} left in ${leftMs} ms, before their 5 s leases expired: the fast path`);

    for (const id of ids) {
      const r = await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 60_000 }, 65_000);
      assert.equal(r.state, 'succeeded');
      assert.deepEqual(r.result, { count: countPrimes(limit) });
      assert.equal(r.attempts.filter((a) => a.outcome === 'succeeded').length, 1);
    }
    for (const moved of onFleet) {
      const r = await callApi(nc, n, 'jobs.get', { id: moved.id });
      assert.equal(r.attempts[0]!.outcome, 'orphaned');
      assert.ok(r.attempts.at(-1)!.node === 'n1' && r.attempts.at(-1)!.resumedFrom > 0, JSON.stringify(r.attempts));
    }
  });
});
