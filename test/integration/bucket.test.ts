// The Bucket port over a real nats-server's KV: the same semantics the
// in-memory KV keeps for the simulation (CAS, delete by revision, keys,
// watch with the caught-up mark), and a key list that never misses a key
// being rewritten (history 1 deletes the old message as the new one lands).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { existsSync } from 'node:fs';
import { until } from '../helpers.ts';
import { cachedNewestNatsServer, type NatsServer, startServer } from '../../harness/launcher.ts';
import { type Bucket, caughtUp, type Entry, isCasConflict, natsBucket } from '../../store/bucket.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('Bucket over nats.js KV (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let kv: Bucket;

  before(async () => {
    server = await startServer();
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    kv = natsBucket(await new Kvm(jetstream(nc)).create('bucket_test', { history: 1 }), 'bucket_test', jsm);
  });
  after(async () => {
    await nc?.close();
    await server?.[Symbol.asyncDispose]();
  });

  test('create refuses a live key, update a stale revision, delete an old one: CasConflictError each time', async () => {
    const r1 = await kv.create('cas.k', bytes('a'));
    await assert.rejects(kv.create('cas.k', bytes('b')), isCasConflict);
    const r2 = await kv.update('cas.k', bytes('b'), r1);
    await assert.rejects(kv.update('cas.k', bytes('c'), r1), isCasConflict);
    await assert.rejects(kv.delete('cas.k', r1), isCasConflict);
    await kv.delete('cas.k', r2);
    assert.equal(await kv.get('cas.k'), null);
    assert.deepEqual(await kv.keys('cas.>'), ['cas.k'], 'the delete marker is still stored');
    const r3 = await kv.create('cas.k', bytes('d'));
    assert.ok(r3 > r2, 'create works over a delete marker');
    await assert.rejects(kv.purge('cas.k', r2), isCasConflict, 'purge at an old revision');
    await kv.purge('cas.k', r3);
    assert.equal(await kv.get('cas.k'), null, 'purged');
    assert.ok((await kv.create('cas.k', bytes('e'))) > r3, 'created again over the purge marker');
  });

  test('a watch yields current values, the caught-up mark, then changes; on no keys, the mark at once', async () => {
    await kv.create('w.a', bytes('1'));
    const w = await kv.watch('w.>');
    const seen: string[] = [];
    const it = w[Symbol.asyncIterator]();
    const next = async () => {
      const { value } = await it.next();
      seen.push(value === caughtUp ? caughtUp : `${(value as Entry).key}:${(value as Entry).operation}`);
    };
    await next();
    await next();
    await kv.create('w.b', bytes('2'));
    await next();
    w.stop();
    assert.deepEqual(seen, ['w.a:PUT', caughtUp, 'w.b:PUT']);
    const empty = await kv.watch('nothing.>');
    assert.deepEqual(await empty[Symbol.asyncIterator]().next(), { value: caughtUp, done: false });
    empty.stop();
  });

  test('keys never misses a key rewritten while it lists, and leaves no consumer behind', async () => {
    for (let i = 0; i < 5; i++) await kv.create(`race.n${i}`, bytes('v'));
    const consumers = (await jsm.streams.info('KV_bucket_test')).state.consumer_count;
    let stop = false;
    const writer = (async () => {
      let rev = (await kv.get('race.n2'))!.revision;
      while (!stop) rev = await kv.update('race.n2', bytes(String(rev)), rev);
    })();
    try {
      for (let i = 0; i < 200; i++) {
        assert.deepEqual((await kv.keys('race.>')).sort(), ['race.n0', 'race.n1', 'race.n2', 'race.n3', 'race.n4']);
      }
    } finally {
      stop = true;
      await writer;
    }
    assert.equal((await jsm.streams.info('KV_bucket_test')).state.consumer_count, consumers);
  });
});

// Retention purges finished records; on servers with per-message TTL (2.11+) the marker a purge leaves goes too,
// so the buckets do not keep ~100 bytes per job ever run. On 2.10 the header is ignored and one marker stays.
const newest = process.env.NATS_SERVER_BIN_NEW ?? cachedNewestNatsServer;
describe('purge markers expire (the newest nats-server, per-message TTL)', {
  skip: !existsSync(newest) && 'no newest binary (setup --with-new-nats)',
}, () => {
  test('a purged key leaves nothing in the stream once its marker TTL has passed; a stale purge is refused', async () => {
    await using server = await startServer({ bin: newest });
    const nc = await connect({ servers: server.url });
    try {
      const jsm = await jetstreamManager(nc);
      const kv = natsBucket(
        await new Kvm(jetstream(nc)).create('purge_test', { history: 1, markerTTL: 1_000 }),
        'purge_test',
        jsm,
        { markerTtlMs: 1_000 },
      );
      const r = await kv.create('job.a', bytes('done'));
      await assert.rejects(kv.purge('job.a', r + 1), isCasConflict);
      await kv.purge('job.a', r);
      const subjects = async () => (await jsm.streams.info('KV_purge_test', { subjects_filter: '>' })).state.num_subjects ?? 0;
      assert.equal(await subjects(), 1, 'the marker is there at first (watchers see the purge)');
      await until('the purge marker to expire', async () => (await subjects()) === 0, 5_000);
      assert.equal(await kv.get('job.a'), null);
      assert.ok((await kv.create('job.a', bytes('again'))) > r, 'the id can be used again');
    } finally {
      await nc.close();
    }
  });
});
