// The edge topology: a 3-server core cluster holding JetStream, and a leaf-node
// nats-server without JetStream whose link to the core runs through the chaos
// TCP proxy. An edge node process connects to the leaf. Jobs submitted at the
// core run at the edge (a label steers them); cutting the leaf link takes the
// edge node's lease, its job resumes on a core node from its checkpoint; on
// healing, the edge node re-joins and its stale attempt is fenced.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { countPrimes } from '../../node/handlers.ts';
import { TcpProxy } from '../../chaos/real/proxy.ts';
import { type LocalCluster, startLocalCluster, waitForReady, waitForStatus } from '../../harness/local.cluster.ts';
import { freePort, leafConfig, type NatsServer, startServer } from '../../harness/launcher.ts';
import { type NodeProcess, spawnNode } from '../../harness/spawn.ts';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { readTransitions } from '../../nats/events.ts';
import { checkHistory } from '../../chaos/checker.ts';
import { runSchedule } from '../../chaos/real/run.ts';
import type { Schedule } from '../../chaos/real/schedule.ts';
import { until } from '../helpers.ts';

const n = names();
const ttl = 2000;
const limit = 600_000;

describe('a leaf-node edge: core cluster of 3 with JetStream, a leaf server without, an edge node on the leaf', () => {
  let core: LocalCluster;
  let leaf: NatsServer;
  let link: TcpProxy;
  let edge: NodeProcess;
  let nc: NatsConnection;
  const get = (id: string) => callApi(nc, n, 'jobs.get', { id });

  before(async () => {
    const leafPorts = [await freePort(), await freePort(), await freePort()];
    core = await startLocalCluster({
      nodes: 0,
      cluster: 3,
      port: 0,
      leaseTtlMs: ttl,
      jsDomain: 'core',
      serverConfig: leafConfig.listen(leafPorts),
      nodeArgs: ['--label', 'zone=core', '--io-slots', '0', '--no-preempt'],
    });
    link = await TcpProxy.start({ port: leafPorts[0]! });
    leaf = await startServer({
      name: 'edge1',
      jetstream: false,
      config: leafConfig.remotes([link.port]),
    });
    edge = spawnNode({
      id: 'e1',
      nats: leaf.url,
      leaseTtlMs: ttl,
      replicas: 3,
      args: ['--js-domain', 'core', '--label', 'zone=edge', '--io-slots', '0', '--no-preempt'],
    });
    nc = await connect({ servers: core.urls });
    await waitForReady(core.urls, 1, { timeoutMs: 60_000 }).catch((err) => {
      throw new Error(`${err.message}\n${edge.output()}\n--- leaf\n${leaf.logTail(30)}`);
    });
  });
  after(async () => {
    await nc?.close();
    await edge?.stop();
    await leaf?.[Symbol.asyncDispose]();
    await link?.close();
    await core?.stop();
  });

  test('jobs submitted at the core run at the edge; a label steers them there', async () => {
    // The edge node alone first: the long job starts there, and the edge node leads.
    await callApi(nc, n, 'jobs.submit', { id: 'edge-job', type: 'primes', input: { limit, chunk: 10_000, pauseMs: 100 } });
    await until('edge-job running at the edge', async () => {
      const r = await get('edge-job');
      return r.state === 'running' && r.owner === 'e1' ? r : null;
    }, 30_000);
    for (const id of ['c1', 'c2']) core.addNode(id);
    await waitForReady(core.urls, 3, { timeoutMs: 60_000 });
    const ids = ['steer-1', 'steer-2', 'steer-3', 'steer-4'];
    for (const id of ids) await callApi(nc, n, 'jobs.submit', { id, type: 'noop', requires: { labels: { zone: 'edge' } } });
    for (const id of ids) {
      const r = await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 20_000 }, 25_000);
      assert.equal(r.state, 'succeeded');
      assert.equal(r.attempts.at(-1)!.node, 'e1');
    }
  });

  test('cutting the leaf link moves the edge job to the core from its checkpoint; healed, the edge node re-joins, its stale attempt fenced', async () => {
    const before = await until('edge-job checkpointed at the edge', async () => {
      const r = await get('edge-job');
      return r.state === 'running' && r.owner === 'e1' && r.progress > 0.1 ? r : null;
    }, 30_000);
    link.cut('blackhole');
    const t0 = Date.now();
    const s = await waitForStatus(core.urls, (v) => !v.nodes.some((x) => x.id === 'e1') && v.leader !== null && v.leader.nodeId !== 'e1', {
      what: 'e1 out of the core view, a core node leading',
      timeoutMs: 30_000,
    });
    const goneMs = Date.now() - t0;
    assert.ok(goneMs < 3 * ttl + 5_000, `e1 left in ${goneMs} ms`);
    assert.match(s.leader!.nodeId, /^c\d$/);
    const moved = await until('edge-job running at the core', async () => {
      const r = await get('edge-job');
      return r.state === 'running' && r.owner?.startsWith('c') ? r : null;
    }, 30_000);
    assert.ok(moved.attempts.at(-1)!.resumedFrom >= before.progress, JSON.stringify(moved.attempts));
    link.heal();
    await waitForStatus(core.urls, (v) => v.nodes.some((x) => x.id === 'e1' && x.state === 'ready'), {
      what: 'e1 back',
      timeoutMs: 30_000,
    });
    const r = await callApi(nc, n, 'jobs.wait', { id: 'edge-job', timeoutMs: 60_000 }, 65_000);
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.result, { count: countPrimes(limit) });
    assert.equal(r.attempts[0]!.node, 'e1');
    assert.notEqual(r.attempts[0]!.outcome, 'succeeded');
    assert.equal(r.attempts.filter((a) => a.outcome === 'succeeded').length, 1, JSON.stringify(r.attempts));
    // The edge node saw its lease lost and fenced itself (its job attempt stopped), then re-joined under a new epoch.
    await edge.waitForLine(/lease e1-node: held\.\S+ → lost/);
    await edge.waitForLine(/node: running\.member\.\S+ → running\.fenced/);
    await edge.waitForLine(/node: running\.fenced\.\S+ → running\.member\.joining/);
    // The edge node led before the cut: it stopped acting (no round trip across the leaf link) before the core took over.
    const history = await until('the event history', () => readTransitions(nc, n).catch(() => null), 30_000);
    const stale = checkHistory(history).filter((v) => v.invariant === 'stale-leader-acted' || v.invariant === 'one-leader-per-epoch');
    assert.deepEqual(stale.map((v) => v.message), []);
  });
});

describe('shoal up --leaf 1: the same topology from one option', () => {
  let c: LocalCluster;
  let nc: NatsConnection;

  before(async () => {
    c = await startLocalCluster({ nodes: 1, cluster: 1, port: 0, leaseTtlMs: 1000, leaf: 1 });
    nc = await connect({ servers: c.urls });
  });
  after(async () => {
    await nc?.close();
    await c?.stop();
  });

  test('an edge node on its leaf server joins the core; a job for zone=edge runs there', async () => {
    const s = await waitForReady(c.urls, 2, { timeoutMs: 60_000 });
    assert.deepEqual(s.nodes.find((x) => x.id === 'e1')?.labels, { zone: 'edge' });
    assert.equal(c.leaves.length, 1);
    await callApi(nc, n, 'jobs.submit', { id: 'to-edge', type: 'noop', requires: { labels: { zone: 'edge' } } });
    const r = await callApi(nc, n, 'jobs.wait', { id: 'to-edge', timeoutMs: 20_000 }, 25_000);
    assert.equal(r.attempts.at(-1)!.node, 'e1');
  });
});

describe('the chaos suite with an edge site: cut-leaf faults on real processes', () => {
  test(
    'a schedule that cuts the leaf link (blackhole, then reset) while jobs run passes every invariant',
    { timeout: 120_000 },
    async () => {
      const schedule: Schedule = {
        initial: [
          { id: 'j1', kind: 'primes', limit: 120_000 },
          { id: 'j2', kind: 'primes', limit: 90_000 },
          { id: 'j3', kind: 'sleep', ms: 1_500 },
          { id: 'j4', kind: 'primes', limit: 60_000, priority: 9 },
        ],
        steps: [
          { at: 800, fault: { kind: 'cut-leaf', mode: 'blackhole', ms: 6_000 } },
          { at: 8_000, fault: { kind: 'cut-leaf', mode: 'reset', ms: 2_000 } },
        ],
      };
      const r = await runSchedule(schedule, { nodes: 3, servers: 3, leaseTtlMs: 4_000, leaf: true });
      assert.deepEqual(r.faults, { 'cut-leaf': 2 });
      assert.deepEqual(r.violations.map((v) => `[${v.invariant}] ${v.message}`), [], r.logs);
      assert.ok(r.records.every((x) => x.state === 'succeeded'), JSON.stringify(r.records.map((x) => [x.id, x.state])));
    },
  );
});
