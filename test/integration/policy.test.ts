// `shoal node --policy` on real processes: the shipped ONNX model by default,
// the heuristic on request, and a corrupt model falling back to the heuristic
// with one warning, a status that says so and a metric; jobs run on all three.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { freePort, type NatsServer, startServer } from '../../harness/launcher.ts';
import { waitForReady } from '../../harness/local.cluster.ts';
import { type NodeProcess, spawnNode } from '../../harness/spawn.ts';
import type { ModelSpec } from '../../policies/onnx.model.ts';
import { shippedModel, specPathOf } from '../../policies/onnx.scorer.ts';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';

const n = names();
const version = (JSON.parse(readFileSync(specPathOf(shippedModel), 'utf8')) as ModelSpec).version;

describe('shoal node --policy: onnx (default), heuristic, and a corrupt model', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const nodes: NodeProcess[] = [];
  let metricsPort = 0;

  before(async () => {
    server = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'shoal-policy-'));
    const corrupt = join(dir, 'broken.onnx');
    writeFileSync(corrupt, 'not a model');
    writeFileSync(specPathOf(corrupt), readFileSync(specPathOf(shippedModel)));
    metricsPort = await freePort();
    const common = { nats: server.url, leaseTtlMs: 1000 };
    nodes.push(spawnNode({ ...common, id: 'p1' }));
    nodes.push(spawnNode({ ...common, id: 'p2', args: ['--policy', 'heuristic', '--speed', '2'] }));
    nodes.push(spawnNode({ ...common, id: 'p3', args: ['--policy', corrupt, '--metrics-port', String(metricsPort)] }));
    nc = await connect({ servers: server.url });
    await waitForReady([server.url], 3);
  });
  after(async () => {
    await nc?.close();
    await Promise.all(nodes.map((p) => p.stop()));
    await server?.stop();
  });

  test("status names each node's scorer; the fallback warns once and shows in status and metrics; jobs run everywhere; work per node and its Gini", async () => {
    const s = await callApi(nc, n, 'status');
    const by = Object.fromEntries(s.nodes.map((x) => [x.id, x]));
    assert.equal(by.p1!.policy, `onnx:${version}`);
    assert.equal(by.p1!.placement, 'dispatch');
    assert.equal(by.p2!.policy, 'heuristic');
    assert.equal(by.p2!.speed, 2);
    assert.match(by.p3!.policy, /^heuristic \(fallback: cannot load ONNX model .*broken\.onnx/);
    const warnings = nodes[2]!.output().split('\n').filter((l) => /scoring bids with the heuristic instead/.test(l));
    assert.equal(warnings.length, 1, nodes[2]!.output());
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^shoal_policy_fallback\{node="p3"\} 1$/m);
    const ids = Array.from({ length: 12 }, (_, i) => `pol-${i}`);
    await Promise.all(ids.map((id) => callApi(nc, n, 'jobs.submit', { id, type: 'sleep', input: { ms: 600 } })));
    const done = await Promise.all(ids.map((id) => callApi(nc, n, 'jobs.wait', { id, timeoutMs: 20_000 }, 25_000)));
    assert.ok(done.every((r) => r.state === 'succeeded'));
    const owners = done.map((r) => r.owner).join(', ');
    assert.equal(new Set(done.map((r) => r.owner)).size, 3, `every node ran some (owners: ${owners})`);
    // Status counts that work per node over its window, and its Gini.
    const after = await callApi(
      nc,
      n,
      'status',
    );
    assert.deepEqual(Object.keys(after.fairness.jobSeconds).sort(), ['p1', 'p2', 'p3']);
    assert.ok(Object.values(after.fairness.jobSeconds).every((s) => s > 0), JSON.stringify(after.fairness));
    assert.ok(after.fairness.gini >= 0 && after.fairness.gini < 1);
    assert.match(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(), /^shoal_work_gini\{node="p3"\} 0?\.?\d+/m);
  });
});
