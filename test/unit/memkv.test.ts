// The in-memory KV keeps JetStream KV's CAS and TTL semantics (the simulation
// layer rests on it), and the job store's CAS loop holds under any interleaving.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SimulatedClock } from 'xstate';
import { MemKv } from '../../chaos/sim/memkv.ts';
import { newJobRecord } from '../../machines/job.machine.ts';
import { checkpointSchema, CheckpointSlot, JobStore } from '../../store/job.store.ts';
import { ApiError, FencedError, JobCancelledError } from '../../base/errors.ts';
import { waitFor } from '../../node/job.queries.ts';
import { JobIndex } from '../../node/job.index.ts';
import { SimClock } from '../../chaos/sim/clock.ts';
import { defaults } from '../../base/defaults.ts';
import { until } from '../../base/time.ts';
import { createActor, toPromise } from 'xstate';
import { type Bucket, caughtUp, isCasConflict } from '../../store/bucket.ts';
import { leaseEffects } from '../../store/lease.effects.ts';
import { decode, encode } from '../../store/codec.ts';
import { keys } from '../../store/keys.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

/** The in-memory bucket with some calls replaced (scheduled by fast-check, or failing). */
function through(mem: MemKv, over: Partial<Bucket>): Bucket {
  return {
    name: mem.name,
    get: (k) => mem.get(k),
    create: (k, v) => mem.create(k, v),
    update: (k, v, r) => mem.update(k, v, r),
    delete: (k, r) => mem.delete(k, r),
    purge: (k, r) => mem.purge(k, r),
    compact: (k, r) => mem.compact(k, r),
    keys: (f) => mem.keys(f),
    lastRevision: () => mem.lastRevision(),
    watch: (f) => mem.watch(f),
    ...over,
  };
}

describe('in-memory KV', () => {
  test('create refuses a live key, update refuses a stale revision, delete takes an expected revision', async () => {
    const kv = new MemKv('t', { clock: new SimulatedClock() });
    const r1 = await kv.create('k', bytes('a'));
    await assert.rejects(kv.create('k', bytes('b')), (e: unknown) => isCasConflict(e));
    const r2 = await kv.update('k', bytes('b'), r1);
    await assert.rejects(kv.update('k', bytes('c'), r1), (e: unknown) => isCasConflict(e));
    await assert.rejects(kv.delete('k', r1), (e: unknown) => isCasConflict(e));
    await kv.delete('k', r2);
    assert.equal(await kv.get('k'), null, 'a deleted key has no value');
    assert.deepEqual(await kv.keys('>'), ['k'], 'its delete marker is still stored, as on the server');
    const r3 = await kv.create('k', bytes('d'));
    assert.ok(r3 > r2, 'revisions only grow; create works over a delete marker');
    await assert.rejects(kv.purge('k', r2), (e: unknown) => isCasConflict(e), 'purge takes an expected revision too');
    await kv.purge('k', r3);
    assert.equal(await kv.get('k'), null, 'a purged key has no value');
  });

  test('a key expires one TTL after its last write, by the injected clock', async () => {
    const clock = new SimulatedClock();
    const kv = new MemKv('leases', { ttlMs: 1000, clock });
    const r = await kv.create('leader', bytes('n1'));
    clock.increment(600);
    await kv.update('leader', bytes('n1'), r);
    clock.increment(999);
    assert.equal(new TextDecoder().decode((await kv.get('leader'))?.value), 'n1');
    clock.increment(1);
    assert.equal(await kv.get('leader'), null);
    await kv.create('leader', bytes('n2'));
    assert.deepEqual(await kv.keys('leader'), ['leader']);
  });

  test('watch yields current values, the caught-up mark, then writes; stop ends it', async () => {
    const kv = new MemKv('t', { clock: new SimulatedClock() });
    await kv.put('job.a', bytes('1'));
    await kv.put('other', bytes('x'));
    const w = await kv.watch('job.>');
    const seen: string[] = [];
    const done = (async () => {
      for await (const e of w) seen.push(e === caughtUp ? e : `${e.key}:${e.operation}`);
    })();
    await kv.put('job.b', bytes('2'));
    await kv.delete('job.a');
    await new Promise((r) => setTimeout(r, 0));
    w.stop();
    await done;
    assert.deepEqual(seen, ['job.a:PUT', caughtUp, 'job.b:PUT', 'job.a:DEL']);
  });

  test('a watch on keys that have no value is caught up at once', async () => {
    const kv = new MemKv('t', { clock: new SimulatedClock() });
    await kv.put('other', bytes('x'));
    const w = await kv.watch('job.>');
    const it = w[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: caughtUp, done: false });
    w.stop();
  });

  test('property: racing CAS writers on one revision, exactly one wins (any interleaving)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 5 }), async (s, writers) => {
        const kv = new MemKv('t', { clock: new SimulatedClock() });
        const base = await kv.create('leader', bytes('none'));
        const get = s.scheduleFunction(async () => kv.get('leader'));
        const update = s.scheduleFunction(async (who: string, rev: number) => kv.update('leader', bytes(who), rev));
        const results = Array.from({ length: writers }, (_, i) =>
          (async () => {
            const cur = await get();
            return update(`w${i}`, cur!.revision).then(() => true, () => false);
          })());
        const wins = (await s.waitFor(Promise.all(results))).filter(Boolean).length;
        assert.equal(wins, 1, `${wins} writers won revision ${base}`);
      }),
      { numRuns: 300 },
    );
  });

  test('property: two leaders assigning the same queued job through the job store: one assignment, attempt 1', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), async (s) => {
        const mem = new MemKv('jobs', { clock: new SimulatedClock() });
        // Interleave every KV call the store makes.
        const kv = through(mem, {
          get: s.scheduleFunction((k: string) => mem.get(k)),
          update: s.scheduleFunction((k: string, v: Uint8Array, r: number) => mem.update(k, v, r)),
        });
        const store = new JobStore(kv);
        const assign = (node: string) => store.apply('j', (r) => (r.state === 'queued' ? { type: 'job.assign', node, at: 1 } : null));
        const [a, b] = await s.waitFor((async () => {
          await store.create(newJobRecord({ id: 'j', type: 'noop', input: null, priority: 5, maxAttempts: 3, timeoutMs: 1000 }, 0));
          return Promise.all([assign('n1'), assign('n2')]);
        })());
        const changed = [a!.changed, b!.changed];
        assert.deepEqual(changed.filter(Boolean).length, 1);
        const final = (await new JobStore(mem).get('j'))!.value; // read outside the scheduler
        assert.equal(final.attempt, 1);
        assert.equal(final.attempts.length, 1);
        assert.equal(final.owner, changed[0] ? 'n1' : 'n2');
      }),
      { numRuns: 300 },
    );
  });

  test('a write on a version the caller holds reads nothing first; a stale one is re-read and re-decided', async () => {
    const mem = new MemKv('jobs', { clock: new SimulatedClock() });
    let gets = 0;
    const store = new JobStore(through(mem, { get: (k) => (gets++, mem.get(k)) }));
    await store.create(newJobRecord({ id: 'j', type: 'noop', input: null, priority: 5, maxAttempts: 3, timeoutMs: 1000 }, 0));
    const known = (await store.get('j'))!;
    gets = 0;
    const a = await store.apply('j', (r) => (r.state === 'queued' ? { type: 'job.assign', node: 'n1', at: 1 } : null), known);
    assert.deepEqual([a!.changed, gets, a!.revision > known.revision], [true, 0, true]);
    // The same stale version again: refused by CAS, re-read, and the job machine says no second assignment.
    const b = await store.apply('j', (r) => (r.state === 'queued' ? { type: 'job.assign', node: 'n2', at: 2 } : null), known);
    assert.deepEqual([b!.changed, gets, b!.record.owner, b!.revision], [false, 1, 'n1', a!.revision]);
  });

  test('a write whose reply was lost is recognised by its bytes (created / changed, and told to onChange); one that never landed is tried again or fails', async () => {
    const mem = new MemKv('jobs', { clock: new SimulatedClock() });
    const lost = new Error('TIMEOUT');
    let dropReply = true;
    let dropRequest = 0;
    const told: string[] = [];
    const store = new JobStore(
      through(mem, {
        create: async (k, v) => {
          if (dropRequest-- > 0) throw lost;
          const r = await mem.create(k, v);
          if (dropReply) throw lost;
          return r;
        },
        update: async (k, v, rev) => {
          await mem.update(k, v, rev);
          throw lost;
        },
      }),
      (_prev, next, event) => told.push(`${next.id}:${event.type}`),
    );
    const spec = (id: string) => newJobRecord({ id, type: 'noop', input: null, priority: 5, maxAttempts: 3, timeoutMs: 1000 }, 0);
    const c = await store.create(spec('a'));
    assert.equal(c.created, true, 'its own landed create');
    const u = await store.apply('a', () => ({ type: 'job.assign', node: 'n1', at: 1 }));
    assert.deepEqual([u?.changed, u?.record.owner], [true, 'n1'], 'its own landed update');
    dropReply = false;
    dropRequest = 1;
    assert.equal((await store.create(spec('b'))).created, true, 'a create whose request was lost is tried again');
    dropRequest = defaults.createTries;
    await assert.rejects(store.create(spec('c')), /TIMEOUT/, 'and fails after createTries');
    assert.deepEqual(told, ['a:job.submit', 'a:job.assign', 'b:job.submit']);
    assert.equal((await store.create(spec('a'))).created, false, 'an existing id is still not created again');
  });

  test('the job index knows live records with their revisions and lately finished ones; followers get each version', async () => {
    const mem = new MemKv('jobs', { clock: new SimulatedClock() });
    const store = new JobStore(mem);
    const spec = (id: string) => newJobRecord({ id, type: 'noop', input: null, priority: 5, maxAttempts: 3, timeoutMs: 1000 }, 0);
    await store.create(spec('a'));
    await store.create(spec('b'));
    await store.apply('b', () => ({ type: 'job.cancel', at: 1 }));
    const index = new JobIndex(mem);
    await index.ready();
    const seen: string[] = [];
    index.follow('a', (r) => seen.push(r.state));
    assert.equal(index.latest('a')?.state, 'queued');
    assert.equal(index.versioned('a')?.revision, (await store.get('a'))!.revision);
    assert.equal(index.latest('b')?.state, 'cancelled');
    assert.equal(index.versioned('b'), undefined, 'only live records are placed');
    assert.equal(index.latest('c'), undefined);
    await store.apply('a', () => ({ type: 'job.assign', node: 'n1', at: 2 }));
    await store.apply('a', () => ({ type: 'job.cancel', at: 3 }));
    await until('the watch delivers', async () => index.latest('a')?.state === 'cancelled', 1_000);
    assert.deepEqual(seen, ['assigned', 'cancelled']);
    assert.deepEqual(index.counts, { queued: 0, assigned: 0, running: 0, succeeded: 0, failed: 0, cancelled: 2 });
    index.stop();
  });

  test('waits are capped per process: past defaults.waitsMax open ones, 503 busy; they free as they end', async () => {
    const mem = new MemKv('jobs', { clock: new SimulatedClock() });
    const store = new JobStore(mem);
    await store.create(newJobRecord({ id: 'w', type: 'noop', input: null, priority: 5, maxAttempts: 3, timeoutMs: 1000 }, 0));
    const index = new JobIndex(mem);
    await index.ready();
    const clock = new SimClock();
    const open = Array.from({ length: defaults.waitsMax }, () => waitFor(store, index, clock, 'w', 1_000).catch((e) => e));
    await assert.rejects(waitFor(store, index, clock, 'w', 1_000), (e: unknown) => e instanceof ApiError && e.status === 503);
    await clock.advance(1_000);
    const ended = await Promise.all(open);
    assert.ok(ended.every((e) => e instanceof ApiError && e.status === 408), 'each timed out as asked');
    await store.apply('w', () => ({ type: 'job.cancel', at: 1 }));
    await until('the watch delivers', async () => index.latest('w')?.state === 'cancelled', 1_000);
    assert.equal((await waitFor(store, index, clock, 'w', 1_000)).state, 'cancelled', 'room again');
    index.stop();
  });

  test('a job index whose watch goes silent while the bucket moves on watches again and catches up', async () => {
    const clock = new SimClock();
    const mem = new MemKv('jobs', { clock: new SimulatedClock() });
    const store = new JobStore(mem);
    await store.create(newJobRecord({ id: 'a', type: 'noop', input: null, priority: 5, maxAttempts: 3, timeoutMs: 1000 }, 0));
    let watches = 0;
    // The first watch delivers the current values, then nothing more until stopped (a stalled consumer).
    const stalling = async (f: string) => {
      const real = await mem.watch(f);
      if (++watches > 1) return real;
      let stop = () => {};
      const stopped = new Promise<void>((r) => (stop = r));
      async function* items() {
        for await (const e of real) {
          yield e;
          if (e === caughtUp) break;
        }
        await stopped;
      }
      return Object.assign(items(), { stop: () => (real.stop(), stop()) });
    };
    const logs: string[] = [];
    const index = new JobIndex(through(mem, { watch: stalling }), { clock, log: (m) => logs.push(m) });
    await index.ready();
    await store.apply('a', () => ({ type: 'job.cancel', at: 1 }));
    await clock.advance(defaults.indexStallCheckMs + defaults.retryMaxMs);
    await until('the index catches up', async () => index.latest('a')?.state === 'cancelled', 1_000);
    assert.equal(watches, 2);
    assert.match(logs.join('\n'), /watch silent at revision 1 while the bucket is at 2; watching again/);
    index.stop();
  });

  test("a first attempt's checkpoint slot claims nothing; a later attempt's claim fences its next save", async () => {
    const mem = new MemKv('ckpt', { clock: new SimulatedClock() });
    let reads = 0;
    const kv = through(mem, { get: (k) => (reads++, mem.get(k)) });
    const first = await CheckpointSlot.claim(kv, 'j', 1);
    assert.deepEqual([reads, first.restored, first.claimed], [0, undefined, false]);
    await first.save({ n: 1 }, 0.1); // creates the key
    await first.save({ n: 2 }, 0.2);
    const second = await CheckpointSlot.claim(kv, 'j', 2);
    assert.deepEqual([second.claimed, second.restored?.state, second.restored?.progress], [true, { n: 2 }, 0.2]);
    await assert.rejects(first.save({ n: 3 }, 0.3), FencedError);
    // A first attempt that saves only after a later attempt claimed the empty slot is fenced too.
    const late = await CheckpointSlot.claim(kv, 'k', 1);
    await CheckpointSlot.claim(kv, 'k', 2);
    await assert.rejects(late.save({ n: 1 }, 0.1), FencedError);
    // A cancel fences the running attempt (saved or not yet), keeps what it saved, and leaves a later claim alone.
    const running = await CheckpointSlot.claim(kv, 'c', 1);
    await running.save({ n: 1 }, 0.5);
    await CheckpointSlot.fence(kv, 'c', 1);
    await assert.rejects(running.save({ n: 2 }, 0.6), JobCancelledError, 'refused as cancelled (a FencedError too)');
    const next = await CheckpointSlot.claim(kv, 'c', 2);
    assert.deepEqual(next.restored?.state, { n: 1 });
    await next.save({ n: 2 }, 0.6);
    assert.equal(decode(checkpointSchema, (await mem.get(keys.job('c')))!.value, 'c').cancelled, undefined, 'a claim drops the mark');
    const unsaved = await CheckpointSlot.claim(kv, 'u', 1);
    await CheckpointSlot.fence(kv, 'u', 1);
    await assert.rejects(unsaved.save({ n: 1 }, 0.1), JobCancelledError);
    const plain = await CheckpointSlot.claim(kv, 'p', 1);
    await plain.save({ n: 1 }, 0.1);
    await CheckpointSlot.claim(kv, 'p', 2);
    await assert.rejects(plain.save({ n: 2 }, 0.2), (e: unknown) => e instanceof FencedError && !(e instanceof JobCancelledError));
    const newer = await CheckpointSlot.claim(kv, 'c', 3);
    await CheckpointSlot.fence(kv, 'c', 1);
    await newer.save({ n: 3 }, 0.7);
  });

  test('a renewal that finds the revision moved and cannot read the key keeps the lease (no verdict), and reads it as ours once it can', async () => {
    const mem = new MemKv('leases', { clock: new SimulatedClock() });
    const holder = { id: 'n1', instance: 'i1' };
    const acquired = await mem.create('leader', encode({ holder, epoch: null, since: 0 }));
    // A renewal sent while disconnected landed on reconnect: the revision moved to our own value.
    const landed = await mem.update('leader', encode({ holder, epoch: acquired, since: 0 }), acquired);
    let readable = false;
    const kv = through(mem, { get: (k) => (readable ? mem.get(k) : Promise.reject(new Error('TIMEOUT'))) });
    const { renewLease } = leaseEffects({ kv: () => kv, probe: async () => 'unknown' });
    const renew = () =>
      toPromise(createActor(renewLease, { input: { key: 'leader', holder, revision: acquired, epoch: acquired } }).start());
    const blind = await renew();
    assert.equal(blind.type, 'failed', `a failed read is no verdict, got ${JSON.stringify(blind)}`);
    readable = true;
    assert.deepEqual(await renew(), { type: 'ours', revision: landed });
    // And a value that is not ours is a real conflict.
    await mem.update('leader', encode({ holder: { id: 'n2', instance: 'i2' }, epoch: landed + 1, since: 0 }), landed);
    assert.equal((await renew()).type, 'conflict');
  });
});
