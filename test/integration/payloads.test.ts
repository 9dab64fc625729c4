// Sizes never livelock: assignments split below the server's max payload,
// results too big for a record fail their job at once with a clear error,
// long error messages are cut, inputs are measured as stored (CBOR), and
// hostile CBOR (tags, references) is answered 4xx while the API keeps serving.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { Encoder } from 'cbor-x';
import type { JobRecord } from '../../api/contract.ts';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { defaults } from '../../base/defaults.ts';
import { until, withCluster } from '../helpers.ts';
import type { LocalCluster } from '../../harness/local.cluster.ts';

const n = names();
const cbor = new Encoder({ useRecords: false, mapsAsObjects: false });

describe('payload sizes: a node with the built-ins, then one with the test module (4 slots each)', () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  withCluster(
    { nodes: 1, slots: 4, perNode: (id) => (id === 'n2' ? { args: ['--jobs', 'test/fixtures/jobs.ts'] } : {}) },
    (fx) => ({ c, nc } = fx),
  );

  /** A CBOR request: the reply's error code (null: answered) and body. */
  const cborRequest = async (endpoint: string, body: Uint8Array) => {
    const h = headers();
    h.set('Content-Type', 'application/cbor');
    const m = await nc.request(n.api(endpoint), body, { timeout: 5_000, headers: h });
    return { code: m.headers?.get('Nats-Service-Error-Code') || null, data: m.data };
  };

  test('four jobs with 256 KiB inputs assigned to one node at once all run (the assignment is split)', async () => {
    // Queued while no node handles their type, they are placed in one round once n2 joins: one node, one batch.
    const input = { pad: 'p'.repeat(256 * 1024 - 40) }; // just below the input limit: 4 records exceed 1 MiB
    const ids = await Promise.all(
      [0, 1, 2, 3].map(async (i) => (await callApi(nc, n, 'jobs.submit', { type: 'double', input: { ...input, x: i } })).id),
    );
    await until(
      'all four waiting',
      async () => (await Promise.all(ids.map((id) => callApi(nc, n, 'jobs.get', { id })))).every((r) => r.pendingReason),
      5_000,
    );
    c.addNode('n2');
    const done = await Promise.all(ids.map((id) => callApi(nc, n, 'jobs.wait', { id, timeoutMs: 15_000 }, 20_000)));
    assert.deepEqual(done.map((r) => r.state), ['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    assert.deepEqual(done.map((r) => r.attempts.length), [1, 1, 1, 1], 'each started on its first assignment');
  });

  test('a result too big for a record fails the job at once with a clear error, not retried', async () => {
    const { id } = await callApi(nc, n, 'jobs.submit', { type: 'big', input: { bytes: 2 * 1024 * 1024 }, maxAttempts: 3 });
    const r: JobRecord = await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 10_000 }, 15_000);
    assert.equal(r.state, 'failed');
    assert.match(r.error ?? '', /result is \d+ bytes encoded; the limit is 524288/);
    assert.equal(r.attempts.length, 1, 'the same every time: not retried');
  });

  test('a huge error message is cut on the record', async () => {
    const { id } = await callApi(nc, n, 'jobs.submit', { type: 'loud', input: { chars: 3 * 1024 * 1024 }, maxAttempts: 1 });
    const r: JobRecord = await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 10_000 }, 15_000);
    assert.equal(r.state, 'failed');
    assert.equal(r.error?.length, defaults.errorMaxChars);
  });

  test('an input is plain JSON data measured as stored: a big CBOR Map is 413 (JSON.stringify sees {}); a Set or a bignum is 400', async () => {
    const input = new Map([['pad', 'p'.repeat(300 * 1024)]]);
    assert.equal(JSON.stringify(input), '{}');
    assert.equal((await cborRequest('jobs.submit', cbor.encode({ type: 'noop', input }))).code, '413');
    assert.equal((await cborRequest('jobs.submit', cbor.encode({ type: 'noop', input: new Set([1, 2]) }))).code, '400');
    assert.equal((await cborRequest('jobs.submit', cbor.encode({ type: 'noop', input: 2n ** 200n }))).code, '400');
  });

  test('hostile CBOR bodies are answered 4xx (or taken as the valid body they wrap), never 500; the API keeps serving', async () => {
    const bodies: Array<[string, Uint8Array]> = [
      ['a reference to nothing (tag 29)', Uint8Array.from([0xd8, 0x1d, 0x05])],
      [
        'a shared value tag around the body (tag 28)',
        Uint8Array.from([0xd8, 0x1c, 0xa1, 0x64, 0x74, 0x79, 0x70, 0x65, 0x64, 0x6e, 0x6f, 0x6f, 0x70]),
      ],
      ['an unknown tag around the body', Uint8Array.from([0xda, 0x00, 0x01, 0x00, 0x00, 0xa0])],
      ['a typed-array tag with a bad length', Uint8Array.from([0xd8, 0x48, 0x43, 0x01, 0x02, 0x03])],
      ['a record definition tag (cbor-x, 0xdfff)', Uint8Array.from([0xd9, 0xdf, 0xff, 0x83, 0x00, 0x01, 0x02])],
      ['a bignum input', cbor.encode({ type: 'noop', input: 2n ** 200n })],
      ['a truncated map', Uint8Array.from([0xbf, 0x64, 0x74, 0x79])],
      ['an indefinite string of 1 MiB chunks claimed', Uint8Array.from([0x7f, 0x7b, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00])],
    ];
    for (const [what, body] of bodies) {
      const r = await cborRequest('jobs.submit', body);
      assert.ok(r.code === null || /^4\d\d$/.test(r.code), `${what}: answered ${r.code} ${new TextDecoder().decode(r.data).slice(0, 200)}`);
      if (what !== 'a shared value tag around the body (tag 28)') assert.notEqual(r.code, null, `${what}: refused`);
    }
    const ok = await callApi(nc, n, 'jobs.submit', { type: 'noop' });
    assert.equal((await callApi(nc, n, 'jobs.wait', { id: ok.id, timeoutMs: 5_000 })).state, 'succeeded');
  });
});
