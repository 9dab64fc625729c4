// The lease machine on a simulated clock with scripted KV outcomes: no NATS.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AcquireOutcome, AcquireRequest } from '../../machines/lease.machine.ts';
import { judgeSilence, leaseFreshAt, leaseTiming, leaseValidAt } from '../../machines/lease.rules.ts';
import { leaseHarness as harness, me, other, timing } from './machine.harness.ts';

const acquiredAt = (revision: number) => (_: AcquireRequest, now: number): AcquireOutcome => ({
  type: 'acquired',
  revision,
  sentAt: now,
  receivedAt: now,
});

/** The first acquire finds `holder` at `revision`; every later one succeeds at `next`. */
function takenThenAcquired(holder: { id: string; instance: string }, revision: number, next: number) {
  let calls = 0;
  return (
    req: AcquireRequest,
    now: number,
  ): AcquireOutcome => (calls++ === 0 ? { type: 'taken', revision, holder } : acquiredAt(next)(req, now));
}

describe('lease machine', () => {
  test('acquires a free key; the acquiring revision is the epoch', async () => {
    const h = harness({ acquire: acquiredAt(7) });
    h.actor.start();
    await h.settle();
    assert.ok(h.actor.getSnapshot().matches('held'));
    assert.equal(h.actor.getSnapshot().context.epoch, 7);
    assert.deepEqual(h.reports, ['acquiring', 'acquired@7']);
    assert.equal(h.acquires[0]!.takeoverRevision, null);
  });

  test('renews on the last revision every renew interval and keeps the epoch', async () => {
    const h = harness({ acquire: acquiredAt(7) });
    h.actor.start();
    await h.settle();
    await h.advance(timing.renewIntervalMs * 3 + 20);
    assert.deepEqual(h.renews.map((r) => r.revision), [7, 17, 27]);
    assert.ok(h.renews.every((r) => r.epoch === 7));
    assert.ok(h.actor.getSnapshot().matches('held'));
    assert.ok(h.reports.filter((r) => r === 'renewed@7').length === 3);
  });

  test('steps down at TTL - margin after the last confirmed send when renewals get no verdict', async () => {
    const h = harness({ acquire: acquiredAt(7), renew: () => ({ type: 'failed', message: 'timeout' }) });
    h.actor.start();
    await h.settle();
    const deadline = timing.ttlMs - timing.marginMs;
    await h.advance(deadline - 20);
    assert.ok(h.actor.getSnapshot().matches('held'), 'still held before the deadline');
    assert.ok(h.renews.length >= 2, 'kept retrying');
    assert.ok(leaseValidAt(h.actor.getSnapshot().context, h.clock.now()));
    await h.advance(30);
    assert.ok(h.actor.getSnapshot().matches('lost'));
    assert.ok(h.reports.includes('lost@7'));
  });

  test('the deadline counts from the send time, not from when the answer arrived', async () => {
    // A renewal that took 850 ms to confirm leaves only 50 ms of validity.
    let n = 0;
    const h = harness({
      acquire: acquiredAt(7),
      renew: (
        r,
        now,
      ) => (n++ === 0
        ? { type: 'renewed', revision: r.revision + 1, sentAt: now - 850, receivedAt: now }
        : { type: 'failed', message: 'slow' }),
    });
    h.actor.start();
    await h.settle();
    await h.advance(timing.renewIntervalMs + 5);
    assert.ok(h.actor.getSnapshot().matches('held'));
    const confirmed = h.clock.now();
    await h.advance(timing.ttlMs - timing.marginMs - 850 + 20);
    assert.ok(
      h.actor.getSnapshot().matches('lost'),
      `lost ~50 ms after the late confirmation (now ${h.clock.now() - confirmed} ms after it)`,
    );
  });

  test('an acquire confirmed only after the validity it grants is not acted on (a paused process)', async () => {
    // The write landed, but its answer is read a whole TTL after it was sent: someone may hold a newer term by now.
    let n = 0;
    const late = timing.ttlMs - timing.marginMs + 100;
    const h = harness({
      acquire: (req, now) => (n++ === 0 ? { type: 'acquired', revision: 7, sentAt: now - late, receivedAt: now } : acquiredAt(9)(req, now)),
    });
    h.actor.start();
    await h.settle();
    assert.ok(h.actor.getSnapshot().matches('standby'), 'stands by instead of holding');
    assert.deepEqual(h.reports, ['acquiring'], 'never reports the stale term as acquired');
    assert.match(h.actor.getSnapshot().context.lastError ?? '', /past its validity/);
  });

  test('a renewal confirmed only after the validity it grants is a lost lease', async () => {
    let n = 0;
    const late = timing.ttlMs - timing.marginMs + 100;
    const h = harness({
      acquire: acquiredAt(7),
      renew: (
        r,
        now,
      ) => (n++ === 0
        ? { type: 'renewed', revision: r.revision + 1, sentAt: now - late, receivedAt: now }
        : { type: 'failed', message: 'x' }),
    });
    h.actor.start();
    await h.settle();
    await h.advance(timing.renewIntervalMs + 5);
    assert.ok(h.actor.getSnapshot().matches('lost'));
    assert.ok(!h.reports.includes('renewed@7'), 'the late renewal is not reported as one');
  });

  test('a timed-out renewal that landed after all is adopted (its revision), without extending validity', async () => {
    let n = 0;
    const h = harness({
      acquire: acquiredAt(7),
      renew: (
        r,
        now,
      ) => (n++ === 0 ? { type: 'ours', revision: 8 } : { type: 'renewed', revision: r.revision + 1, sentAt: now, receivedAt: now }),
    });
    h.actor.start();
    await h.settle();
    const validBefore = h.actor.getSnapshot().context.validUntil;
    await h.advance(timing.renewIntervalMs + 5);
    assert.deepEqual(h.renews.map((r) => r.revision), [7, 8], 'retried at once on the adopted revision');
    assert.ok(h.actor.getSnapshot().matches('held'));
    assert.ok(h.actor.getSnapshot().context.validUntil! > validBefore!, 'the follow-up renewal extended it');
    assert.equal(h.actor.getSnapshot().context.revision, 9);
  });

  test('a CAS conflict on renewal loses the lease at once', async () => {
    const h = harness({ acquire: acquiredAt(7), renew: () => ({ type: 'conflict', message: 'taken' }) });
    h.actor.start();
    await h.settle();
    await h.advance(timing.renewIntervalMs + 5);
    assert.ok(h.actor.getSnapshot().matches('lost'));
    assert.equal(h.actor.getSnapshot().context.epoch, null);
  });

  test('stands by while another holder has it, and takes over its revision when it is gone', async () => {
    const h = harness({ acquire: takenThenAcquired(other, 41, 42) });
    h.actor.start();
    await h.settle();
    assert.ok(h.actor.getSnapshot().matches('standby'));
    h.actor.send({ type: 'holder.alive' });
    assert.ok(h.reports.includes('standby'));
    h.actor.send({ type: 'holder.gone', revision: 41 });
    await h.settle();
    assert.equal(h.acquires[1]!.takeoverRevision, 41);
    assert.ok(h.actor.getSnapshot().matches('held'));
    assert.equal(h.actor.getSnapshot().context.epoch, 42);
  });

  test('a follower stands by in one state while the holder lives; a silent prober still gets a retry after 5 TTL', async () => {
    const h = harness({ acquire: () => ({ type: 'taken', revision: 5, holder: other }) });
    h.actor.start();
    await h.settle();
    await h.advance(5 * timing.ttlMs - 20);
    assert.equal(h.acquires.length, 1, 'no create attempts while standing by');
    await h.advance(30);
    assert.equal(h.acquires.length, 2);
    assert.ok(h.acquires.every((a) => a.takeoverRevision === null));
  });

  test('a new holder restarts the prober on it; its death is then taken over at its revision', async () => {
    const h = harness({ acquire: takenThenAcquired(other, 5, 12) });
    h.actor.start();
    await h.settle();
    const third = { id: 'n3', instance: 'i-3' };
    h.actor.send({ type: 'holder.changed', holder: third, revision: 11 });
    assert.deepEqual(h.actor.getSnapshot().context.other, { holder: third, revision: 11 });
    h.actor.send({ type: 'holder.gone', revision: 11 });
    await h.settle();
    assert.equal(h.acquires[1]!.takeoverRevision, 11);
    assert.ok(h.actor.getSnapshot().matches('held'));
  });

  test('a deleted key (graceful release elsewhere) is taken without waiting', async () => {
    const h = harness({ acquire: takenThenAcquired(other, 5, 6) });
    h.actor.start();
    await h.settle();
    h.actor.send({ type: 'key.freed' });
    await h.settle();
    assert.ok(h.actor.getSnapshot().matches('held'));
  });

  test('its own stale value (same instance, after being fenced) is replaced by CAS at once', async () => {
    const h = harness({ acquire: takenThenAcquired(me, 9, 10) });
    h.actor.start();
    await h.settle();
    await h.settle();
    assert.equal(h.acquires[1]!.takeoverRevision, 9);
    assert.ok(h.actor.getSnapshot().matches('held'));
  });

  test('release deletes on the last revision and ends in released', async () => {
    const h = harness({ acquire: acquiredAt(7) });
    h.actor.start();
    await h.settle();
    h.actor.send({ type: 'release' });
    await h.settle();
    assert.equal(h.releases[0]!.revision, 7);
    assert.equal(h.actor.getSnapshot().status, 'done');
    assert.deepEqual(h.reports.slice(-1), ['released@7']);
  });

  test('release while standing by needs no write', async () => {
    const h = harness({ acquire: () => ({ type: 'taken', revision: 5, holder: other }) });
    h.actor.start();
    await h.settle();
    h.actor.send({ type: 'release' });
    assert.equal(h.actor.getSnapshot().status, 'done');
    assert.equal(h.releases.length, 0);
  });
});

describe('lease rules', () => {
  test('timing follows the TTL: renew every TTL/3, margin and poll bounded', () => {
    const t = leaseTiming(1000);
    assert.equal(t.renewIntervalMs, 333);
    assert.ok(t.marginMs > 0 && t.marginMs < t.ttlMs - t.renewIntervalMs);
    assert.ok(t.pollIntervalMs <= 1000);
    for (const ttl of [50, 1_000, 20_000, 600_000]) {
      const x = leaseTiming(ttl);
      assert.ok(x.renewIntervalMs + x.marginMs < ttl, `TTL ${ttl}: a renewal is due before the margin`);
      assert.ok(x.retryIntervalMs <= x.renewIntervalMs, `TTL ${ttl}: retries come before the next renewal`);
    }
  });

  test('a holder may act only before its validity, by its own clock', () => {
    assert.equal(leaseValidAt({ validUntil: null }, 0), false);
    assert.equal(leaseValidAt({ validUntil: 100 }, 99), true);
    assert.equal(leaseValidAt({ validUntil: 100 }, 100), false);
    // Fresh: valid, and its last confirmed renewal sent at most a renew interval and a margin ago.
    const t = leaseTiming(1_000);
    const sentAt = 0;
    const validUntil = sentAt + t.ttlMs - t.marginMs;
    assert.equal(leaseFreshAt({ validUntil }, t, sentAt + t.renewIntervalMs + t.marginMs), true);
    assert.equal(leaseFreshAt({ validUntil }, t, sentAt + t.renewIntervalMs + t.marginMs + 1), false, 'valid, but stale');
    assert.equal(leaseValidAt({ validUntil }, sentAt + t.renewIntervalMs + t.marginMs + 1), true);
  });

  test('silence: a revision seen unrenewed for a whole TTL of our clock is expired; a renewal restarts the count', () => {
    let j = judgeSilence(undefined, 7, 1_000, 500);
    assert.deepEqual(j, { sighting: { revision: 7, at: 1_000 }, expired: false });
    j = judgeSilence(j.sighting, 7, 1_499, 500);
    assert.equal(j.expired, false);
    assert.equal(judgeSilence(j.sighting, 7, 1_500, 500).expired, true);
    // Renewed at revision 8: counted from when we first saw 8, not from the old sighting.
    const renewed = judgeSilence(j.sighting, 8, 1_600, 500);
    assert.deepEqual(renewed, { sighting: { revision: 8, at: 1_600 }, expired: false });
    assert.equal(judgeSilence(renewed.sighting, 8, 2_099, 500).expired, false);
  });
});
