// The runtime-neutral parts of base/, store/ and nats/: codec, names, timing, connection
// options. No NATS; runs under Node and Deno alike.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { z } from 'zod';
import { decode, decodeJson, encode, encodeJson } from '../../store/codec.ts';
import { connectionOptions } from '../../nats/connect.ts';
import { defaultLeaseTtlMs, defaults } from '../../base/defaults.ts';
import { CodecError } from '../../base/errors.ts';
import { leaseValueSchema } from '../../store/lease.records.ts';
import { confirmGone } from '../../nats/probe.ts';
import { type Liveness } from '../../store/lease.records.ts';
import { names } from '../../nats/subjects.ts';

const shape = z.object({ a: z.number(), b: z.string().optional() }).strict();

describe('codec', () => {
  test('CBOR round-trips a lease value and validates it', () => {
    const v = { holder: { id: 'n1', instance: 'i' }, epoch: 3, since: 1700000000000 };
    assert.deepEqual(decode(leaseValueSchema, encode(v), 'lease'), v);
  });

  test('garbage CBOR and wrong shapes are a CodecError naming the field', () => {
    assert.throws(() => decode(shape, new Uint8Array([0x1c]), 'thing'), CodecError);
    assert.throws(() => decode(shape, encode({ a: 'x' }), 'thing'), (e: unknown) => e instanceof CodecError && /field 'a'/.test(e.message));
  });

  test('JSON: empty body is {}, bad JSON and unknown fields are CodecErrors', () => {
    assert.deepEqual(decodeJson(z.object({}).strict(), new Uint8Array(), 'req'), {});
    assert.deepEqual(decodeJson(shape, encodeJson({ a: 1 }), 'req'), { a: 1 });
    assert.throws(() => decodeJson(shape, new TextEncoder().encode('{'), 'req'), /not valid JSON/);
    assert.throws(() => decodeJson(shape, encodeJson({ a: 1, c: 2 }), 'req'), CodecError);
    assert.throws(() => decodeJson(shape, new Uint8Array([0xff]), 'req'), /not UTF-8/);
  });

  test('property: decoding any bytes either validates or throws CodecError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        for (const fn of [() => decode(shape, bytes, 'x'), () => decodeJson(shape, bytes, 'x')]) {
          try {
            shape.parse(fn());
          } catch (err) {
            assert.ok(err instanceof CodecError, String(err));
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('names, timing, connection options', () => {
  test('every name derives from the prefix; bad prefixes are refused', () => {
    const n = names('blue');
    assert.equal(n.leasesBucket, 'blue_leases');
    assert.equal(n.api('status'), 'blue.api.status');
    assert.equal(n.eventBatch('n1'), 'blue.evt.batch.n1');
    assert.equal(n.nodePing('n1', 'abc'), 'blue.node.n1.ping.abc');
    assert.throws(() => names('a.b'), /subject token/);
  });

  test('the default lease TTL: longer with replicated buckets', () => {
    assert.equal(defaultLeaseTtlMs(1), defaults.leaseTtlMs);
    assert.ok(defaultLeaseTtlMs(3) > 9_000 * 1.5, 'replicated default outlasts a 4-9 s stream-leader election');
  });

  test('connection options come from flags, then env; reconnect forever with fast pings', () => {
    const o = connectionOptions({ nats: 'nats://a:1, nats://b:2' }, 'x', { NATS_USER: 'u', NATS_PASSWORD: 'p' });
    assert.deepEqual(o.servers, ['nats://a:1', 'nats://b:2']);
    assert.equal(o.user, 'u');
    assert.equal(o.pass, 'p');
    assert.equal(o.maxReconnectAttempts, -1);
    assert.ok((o.pingInterval ?? 0) <= 5_000);
    assert.deepEqual(connectionOptions({}, 'x', { NATS_URL: 'nats://c:3' }).servers, ['nats://c:3']);
    assert.deepEqual(connectionOptions({}, 'x', {}).servers, [defaults.natsUrl]);
    assert.equal(o.ignoreClusterUpdates, false, "by default a node learns the cluster's other servers");
    assert.equal(connectionOptions({ discovery: false }, 'x', {}).ignoreClusterUpdates, true, '--no-discovery keeps to the given URLs');
  });
});

describe('liveness probe', () => {
  const scripted = (answers: Liveness[]) => {
    const asked: Liveness[] = [];
    return {
      asked,
      probe: async () => {
        const a = answers.shift()!;
        asked.push(a);
        return a;
      },
    };
  };
  const holder = { id: 'n1', instance: 'i1' };

  test('"no responders" counts only when a second ping says it again (a holder that was reconnecting answers)', async () => {
    const reconnecting = scripted(['gone', 'alive']);
    assert.equal(await confirmGone(reconnecting.probe, undefined, { confirmMs: 1 })(holder), 'alive');
    const dead = scripted(['gone', 'gone']);
    assert.equal(await confirmGone(dead.probe, undefined, { confirmMs: 1 })(holder), 'gone');
    const alive = scripted(['alive']);
    assert.equal(await confirmGone(alive.probe, undefined, { confirmMs: 1 })(holder), 'alive');
    assert.deepEqual(alive.asked, ['alive'], 'an answer needs no second ping');
  });

  test('on a lone server (final), the first "no responders" settles it; in a cluster it is asked again', async () => {
    const lone = scripted(['gone', 'alive']);
    assert.equal(await confirmGone(lone.probe, undefined, { confirmMs: 1, final: () => true })(holder), 'gone');
    assert.deepEqual(lone.asked, ['gone']);
    const clustered = scripted(['gone', 'alive']);
    assert.equal(await confirmGone(clustered.probe, undefined, { confirmMs: 1, final: () => false })(holder), 'alive');
  });
});
