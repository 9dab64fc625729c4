// Deno as a first-class runtime: a cluster of Node and Deno node processes
// (the same source, `deno task node`), a checkpointing job moved Node → Deno →
// Node by kill -9, a Deno node leading once the Node nodes are gone, and a
// Deno node's module handlers in worker threads (a spinning one timed out).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type NatsConnection } from '@nats-io/transport-node';
import { countPrimes } from '../../node/handlers.ts';
import { type LocalCluster, waitForReady, waitForStatus } from '../../harness/local.cluster.ts';
import { denoBinary, type NodeProcess } from '../../harness/spawn.ts';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { until, withCluster } from '../helpers.ts';

const n = names();
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('a mixed cluster of Node and Deno node processes, lease TTL 1 s', () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  const get = (id: string) => callApi(nc, n, 'jobs.get', { id });
  /** Until job `id` runs on `node` with at least `checkpoints` checkpoints there. */
  const runningOn = (id: string, node: NodeProcess, past: number) =>
    until(`job ${id} running on ${node.id} past ${Math.round(past * 100)} %`, async () => {
      const r = await get(id);
      return r.state === 'running' && r.owner === node.id && r.progress > past ? r : null;
    }, 60_000);

  withCluster({ nodes: 1 }, (fx) => ({ c, nc } = fx));

  test('a job killed on a Node node resumes on a Deno node from its checkpoint, and back on a Node node', async () => {
    const limit = 600_000;
    await callApi(nc, n, 'jobs.submit', { id: 'travel', type: 'primes', input: { limit, chunk: 10_000, pauseMs: 200 } });
    const [n1] = c.nodes;
    const d1 = c.addNode('d1', 'deno');
    const s = await waitForReady(c.urls, 2, { timeoutMs: 60_000 });
    const d = s.nodes.find((x) => x.id === 'd1')!;
    assert.match(d.runtime, /^deno 2\.\d+\.\d+/);
    assert.match(s.nodes.find((x) => x.id === 'n1')!.runtime, /^node \d+/);
    assert.match(d.policy, /^onnx:/, 'the Deno node scores its bids with the ONNX model, not a fallback');
    assert.equal(d.pid, d1.pid);

    const onNode = await runningOn('travel', n1!, 0.1);
    await n1!.kill();
    const onDeno = await runningOn('travel', d1, onNode.progress);
    const n2 = c.addNode('n2');
    await waitForReady(c.urls, 2, { timeoutMs: 60_000 });
    await runningOn('travel', d1, onDeno.progress);
    await d1.kill();
    await runningOn('travel', n2, onDeno.progress);
    const r = await callApi(nc, n, 'jobs.wait', { id: 'travel', timeoutMs: 60_000 }, 65_000);
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.result, { count: countPrimes(limit) });
    const byNode = r.attempts.map((a) => a.node);
    assert.deepEqual(byNode, ['n1', 'd1', 'n2'], JSON.stringify(r.attempts));
    assert.deepEqual(r.attempts.map((a) => a.outcome), ['orphaned', 'orphaned', 'succeeded']);
    assert.ok(r.attempts[1]!.resumedFrom > 0 && r.attempts[2]!.resumedFrom > r.attempts[1]!.resumedFrom, JSON.stringify(r.attempts));
  });

  test("the package's Worker and client run under Deno from the same sources", async () => {
    const r = spawnSync(denoBinary(), ['run', '-A', '--quiet', 'test/fixtures/sdk.app.ts'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, NATS_URL: c.urls.join(',') },
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /result \{"y":42,"runtime":"deno"\} owner (deno-worker|n1)/);
  });

  test('a Deno node leads once every Node node has left', async () => {
    const d2 = c.addNode('d2', 'deno');
    await waitForReady(c.urls, 2, { timeoutMs: 60_000 });
    for (const p of c.nodes.filter((p) => p.running && p.spec.runtime !== 'deno')) assert.equal((await p.stop()).code, 0);
    const led = await waitForStatus(c.urls, (v) => v.leader?.nodeId === 'd2', { what: 'the Deno node leading', timeoutMs: 10_000 });
    assert.deepEqual(led.nodes.map((x) => x.id), ['d2'], `the drained nodes released their leases\n${c.logs(15)}`);
    assert.equal((await d2.stop()).code, 0);
  });
});

describe('a Deno node with a job module: its handlers run in worker threads', () => {
  let nc: NatsConnection;
  withCluster({ nodes: 1, runtime: 'deno', nodeArgs: ['--jobs', 'test/fixtures/jobs.ts'] }, (fx) => ({ nc } = fx));

  test('a handler that never yields is timed out while the node keeps its lease; the next job runs on a fresh thread', async () => {
    const before = (await callApi(nc, n, 'status')).nodes[0]!;
    assert.match(before.runtime, /^deno 2/);
    const { id } = await callApi(nc, n, 'jobs.submit', { type: 'spin', input: { ms: 5_000 }, timeoutMs: 1_000, maxAttempts: 1 });
    const r = await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 10_000 }, 15_000);
    assert.equal(r.state, 'failed');
    assert.match(r.error ?? '', /timed out after 1000 ms/);
    assert.ok(r.updatedAt - r.createdAt < 4_000, 'ended by its timeout, not by the loop');
    const after = (await callApi(nc, n, 'status')).nodes[0]!;
    assert.equal(after.epoch, before.epoch, 'the node kept its lease');
    const ok = await callApi(nc, n, 'jobs.submit', { type: 'double', input: { x: 4 } });
    assert.deepEqual((await callApi(nc, n, 'jobs.wait', { id: ok.id, timeoutMs: 10_000 })).result, { y: 8 });
  });
});
