// Stopping is bounded: a node told to stop while its nats-server is gone
// gives up after its drain deadline (its lease is lost by then anyway) and
// exits non-zero, saying it could not hand back; with the server up it exits 0.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { type NatsServer, startServer } from '../../harness/launcher.ts';
import { spawnNode } from '../../harness/spawn.ts';
import { waitForReady } from '../../harness/local.cluster.ts';
import { callApi } from '../../nats/client.ts';
import { leaseTiming } from '../../machines/lease.rules.ts';
import { defaults } from '../../base/defaults.ts';
import { names } from '../../nats/subjects.ts';
import { until } from '../helpers.ts';

const n = names();
const ttl = 1000;
/** The drain's deadline, then the bounded flush of events and the connection (twice). */
const bound = leaseTiming(ttl).drainDeadlineMs + 2 * defaults.stopFlushMs;

describe('stopping a node', () => {
  let server: NatsServer | null = null;
  after(async () => await server?.stop());

  test('SIGTERM while its nats-server is gone: exits 1 within the drain deadline, saying why', async () => {
    server = await startServer({});
    const node = spawnNode({ id: 'lonely', nats: server.url, leaseTtlMs: ttl, slots: 2 });
    await waitForReady([server.url], 1);
    const nc = await connect({ servers: server.url });
    await callApi(nc, n, 'jobs.submit', { type: 'sleep', id: 'long', input: { ms: 600_000 } });
    await until('the job runs', async () => (await callApi(nc, n, 'jobs.get', { id: 'long' })).state === 'running', 10_000);
    await nc.close();
    await server.kill('SIGKILL');
    const began = performance.now();
    node.signal('SIGTERM');
    const exit = await Promise.race([
      node.exited,
      new Promise<null>((r) => setTimeout(() => r(null), bound + 10_000)),
    ]);
    const took = performance.now() - began;
    if (!exit) await node.kill();
    console.log(`# SIGTERM → exit: ${Math.round(took)} ms (bound ${bound} ms)`);
    assert.ok(exit, `still running ${Math.round(took)} ms after SIGTERM:\n${node.output()}`);
    assert.equal(exit.code, 1, node.output());
    assert.ok(took < bound + 1_000, `took ${Math.round(took)} ms, bound ${bound} ms`);
    assert.match(node.output(), /could not drain cleanly/);
  });
});
