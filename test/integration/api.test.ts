// The public API as any NATS client sees it: micro-service discovery, JSON
// status, the older `nats` v2 client, and garbage that gets a 4xx while the
// service keeps serving. Also the node's own start-up refusals.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { withCluster } from '../helpers.ts';
import fc from 'fast-check';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { connect as connectV2, StringCodec } from 'nats';
import { type LocalCluster, waitForReady } from '../../harness/local.cluster.ts';
import { spawnNode } from '../../harness/spawn.ts';
import { callApi } from '../../nats/client.ts';
import { ApiError } from '../../base/errors.ts';
import { defaults } from '../../base/defaults.ts';
import type { ClusterView } from '../../api/contract.ts';
import { names } from '../../nats/subjects.ts';

const n = names();

describe('public API (micro service, JSON)', () => {
  let c: LocalCluster;
  let nc: NatsConnection;

  withCluster({ nodes: 2 }, (fx) => ({ c, nc } = fx));

  test('status answers the documented shape', async () => {
    const s = await callApi(nc, n, 'status');
    assert.ok(s.leader && typeof s.leader.nodeId === 'string' && typeof s.leader.epoch === 'number');
    assert.ok(!Number.isNaN(Date.parse(s.leader.since)));
    assert.equal(s.nodes.length, 2);
    for (const node of s.nodes) {
      assert.match(node.runtime, /^node \d+\.\d+\.\d+$/);
      assert.equal(typeof node.pid, 'number');
      assert.equal(typeof node.host, 'string');
      assert.equal(node.slots, defaults.slots);
      assert.ok(!Number.isNaN(Date.parse(node.lastSeen)));
    }
  });

  test('$SRV discovery finds the service on every node', async () => {
    const replies: unknown[] = [];
    const iter = await nc.requestMany(`$SRV.PING.${n.serviceName}`, undefined, { maxWait: 500 });
    for await (const m of iter) replies.push(m.json());
    assert.equal(replies.length, 2);
    // Every node's service lists what every node serves; the reads (status, get, wait) are the dispatcher's and its standby's.
    const info = (await nc.request(`$SRV.INFO.${n.serviceName}`)).json<{ endpoints: Array<{ subject: string }> }>();
    assert.ok(info.endpoints.some((e) => e.subject === n.api('jobs.submit')));
  });

  test('a client on the older nats v2 package drives it with plain JSON', async () => {
    const old = await connectV2({ servers: c.urls });
    try {
      const sc = StringCodec();
      const m = await old.request(n.api('status'), sc.encode('{}'), { timeout: 5000 });
      const s = JSON.parse(sc.decode(m.data)) as ClusterView;
      assert.ok(s.leader);
      assert.equal(s.nodes.length, 2);
    } finally {
      await old.close();
    }
  });

  test('malformed requests get 400 with error headers and a JSON body naming the problem', async () => {
    const bad: Array<[string, Uint8Array]> = [
      ['not JSON', new TextEncoder().encode('{nope')],
      ['an array', new TextEncoder().encode('[1,2]')],
      ['an unknown field', new TextEncoder().encode('{"verbose":true}')],
      ['invalid UTF-8', new Uint8Array([0xff, 0xfe, 0xfd])],
    ];
    for (const [what, body] of bad) {
      const m = await nc.request(n.api('status'), body, { timeout: 5000 });
      assert.equal(m.headers?.get('Nats-Service-Error-Code'), '400', what);
      const e = m.json<{ error: { code: string; message: string } }>();
      assert.equal(e.error.code, 'bad_request', what);
      assert.match(e.error.message, /status request/, what);
    }
    const h = headers();
    h.set('Content-Type', 'application/cbor');
    const m = await nc.request(n.api('status'), new Uint8Array([0x1c, 0xff]), { timeout: 5000, headers: h });
    assert.equal(m.headers?.get('Nats-Service-Error-Code'), '400', 'garbage CBOR');
    // Regression (found by the property below): an error quoting a key with a newline crashed the
    // node, since header values cannot hold CR/LF. The body keeps the full message.
    const nl = await nc.request(n.api('status'), new TextEncoder().encode('{"x\\ny":1}'), { timeout: 5000 });
    assert.equal(nl.headers?.get('Nats-Service-Error-Code'), '400');
    assert.match(nl.json<{ error: { message: string } }>().error.message, /x\ny/);
    assert.ok((await callApi(nc, n, 'status')).leader, 'still serving');
  });

  test('a built-in type with input that does not fit is 400 naming the field and what it expects; nothing is stored', async () => {
    for (let i = 0; i < 4; i++) {
      await assert.rejects(
        callApi(nc, n, 'jobs.submit', { type: 'primes', input: { limit: 'a lot' }, id: `lots-${i}` }),
        (e: unknown) =>
          e instanceof ApiError && e.status === 400 && e.code === 'bad_input' &&
          /input does not match job type 'primes': input\.limit: .*expected number/i.test(e.message),
      );
      await assert.rejects(callApi(nc, n, 'jobs.get', { id: `lots-${i}` }), (e: unknown) => e instanceof ApiError && e.status === 404);
    }
  });

  test('an oversize request gets 413', async () => {
    const big = new TextEncoder().encode(JSON.stringify({ pad: 'x'.repeat(defaults.apiMaxRequestBytes) }));
    const m = await nc.request(n.api('status'), big, { timeout: 5000 });
    assert.equal(m.headers?.get('Nats-Service-Error-Code'), '413');
  });

  test('property: random bytes and random JSON never get a 5xx, and the service keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.json().map((j) => new TextEncoder().encode(j))),
        fc.boolean(),
        async (body, asCbor) => {
          const h = headers();
          if (asCbor) h.set('Content-Type', 'application/cbor');
          const m = await nc.request(n.api('status'), body, { timeout: 5000, headers: h });
          const code = m.headers?.get('Nats-Service-Error-Code');
          if (code) assert.ok(Number(code) >= 400 && Number(code) < 500, `got ${code} for ${Buffer.from(body).toString('hex')}`);
        },
      ),
      { numRuns: 150 },
    );
    const s = await callApi(nc, n, 'status');
    assert.equal(s.nodes.length, 2);
  });

  test('a second process with a live node id refuses to start, naming the problem', async () => {
    const dup = spawnNode({ id: 'n1', nats: c.urls.join(',') });
    const e = await dup.exited;
    assert.equal(e.code, 1);
    assert.match(dup.output(), /node id 'n1' is in use by a live process/);
  });

  test('a node loads user job handlers with --jobs; a bad module is a clear start-up error', async () => {
    const custom = spawnNode({ id: 'custom', nats: c.urls.join(','), args: ['--jobs', 'test/fixtures/jobs.ts'] });
    try {
      await waitForReady(c.urls, 3);
      await callApi(nc, n, 'jobs.submit', { type: 'double', input: { x: 21 }, id: 'dbl' });
      const r = await callApi(nc, n, 'jobs.wait', { id: 'dbl', timeoutMs: 10_000 }, 15_000);
      assert.deepEqual([r.state, r.result], ['succeeded', { y: 42 }], JSON.stringify(r));
      // A checkpoint over the limit fails the job at once with a message that says what to do.
      await callApi(nc, n, 'jobs.submit', { type: 'hugeCheckpoint', id: 'huge', maxAttempts: 3 });
      const h = await callApi(
        nc,
        n,
        'jobs.wait',
        { id: 'huge', timeoutMs: 10_000 },
        15_000,
      );
      assert.equal(h.state, 'failed');
      assert.match(h.error ?? '', /checkpoint of job huge is \d+ bytes encoded; the limit is 524288/);
      assert.equal(h.attempts.length, 1, 'not retried');
      // Input checked at submit against the module's schemas, by whichever node the request reaches
      // (the other two ask the custom node): 400 naming the field, and nothing stored.
      for (let i = 0; i < 6; i++) {
        const [type, input] = i % 2 ? ['double', { x: 'two' }] : ['triple', { x: -1 }];
        await assert.rejects(
          callApi(nc, n, 'jobs.submit', { type, input, id: `bad-${i}` }),
          (e: unknown) => e instanceof ApiError && e.status === 400 && /input does not match job type '\w+': input\.x: /.test(e.message),
        );
        await assert.rejects(callApi(nc, n, 'jobs.get', { id: `bad-${i}` }), (e: unknown) => e instanceof ApiError && e.status === 404);
      }
      await callApi(nc, n, 'jobs.submit', { type: 'triple', input: { x: 5 }, id: 'tpl' });
      assert.deepEqual((await callApi(nc, n, 'jobs.wait', { id: 'tpl', timeoutMs: 10_000 }, 15_000)).result, { y: 15 });
      // Oversize input is refused at submit.
      await assert.rejects(
        callApi(nc, n, 'jobs.submit', { type: 'noop', input: 'y'.repeat(300 * 1024) }),
        (e: unknown) => e instanceof ApiError && e.status === 413,
      );
    } finally {
      await custom.stop();
    }
    const broken = spawnNode({ id: 'broken', nats: c.urls.join(','), args: ['--jobs', 'test/fixtures/missing.ts'] });
    assert.equal((await broken.exited).code, 1);
    assert.match(broken.output(), /cannot load job handlers from test\/fixtures\/missing.ts/);
  });

  test('a node asking for another lease TTL than the cluster bucket refuses to start, saying what to do', async () => {
    const odd = spawnNode({ id: 'odd', nats: c.urls.join(','), leaseTtlMs: 2500 });
    const e = await odd.exited;
    assert.equal(e.code, 1);
    assert.match(odd.output(), /--lease-ttl 2500 differs from the cluster's lease TTL 1000 ms/);
  });
});
