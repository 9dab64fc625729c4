// The node machine with an inert node lease and a fake coordinator that
// answers `stop` with `coordinator.stopped`: joining, fencing, draining.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeStateName } from '../../machines/node.machine.ts';
import { nodeHarness as node, timing } from './machine.harness.ts';

const acquired = { type: 'lease.acquired', key: 'node.n1', epoch: 3, validUntil: 1e12 } as const;

describe('node machine', () => {
  test('starting → joining → ready once its lease is held; the coordinator starts only then', async () => {
    const h = node();
    h.actor.start();
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'starting');
    await h.settle();
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'joining');
    assert.deepEqual(h.toCoordinator, []);
    h.actor.send(acquired);
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'ready');
    assert.equal(h.actor.getSnapshot().context.epoch, 3);
    assert.deepEqual(h.toCoordinator, ['start']);
  });

  test('a bootstrap error ends in failed with the message', async () => {
    const h = node({ bootstrapFails: true });
    h.actor.start();
    await h.settle();
    assert.equal(h.actor.getSnapshot().value, 'failed');
    assert.match(h.actor.getSnapshot().context.error ?? '', /TTL mismatch/);
  });

  test('a live holder of the same node id makes it fail with a clear error', async () => {
    const h = node();
    h.actor.start();
    await h.settle();
    h.actor.send({ type: 'lease.standby', key: 'node.n1', holder: { id: 'n1', instance: 'other' } });
    assert.equal(h.actor.getSnapshot().value, 'failed');
    assert.match(h.actor.getSnapshot().context.error ?? '', /in use by a live process/);
  });

  test('losing the node lease fences it: the coordinator stops, then it re-joins with a fresh lease', async () => {
    const h = node();
    h.actor.start();
    await h.settle();
    h.actor.send(acquired);
    h.actor.send({ type: 'lease.lost', key: 'node.n1', epoch: 3, reason: 'deadline passed' });
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'fenced');
    assert.equal(h.actor.getSnapshot().context.epoch, null);
    assert.deepEqual(h.toCoordinator, ['start', 'stop']);
    h.clock.increment(timing.pollIntervalMs);
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'joining');
    h.actor.send({ ...acquired, epoch: 9 });
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'ready');
    assert.equal(h.actor.getSnapshot().context.epoch, 9);
    assert.deepEqual(h.toCoordinator, ['start', 'stop', 'start']);
  });

  test('drain: coordinator steps down first, then the node lease is released, then stopped', async () => {
    const h = node();
    h.actor.start();
    await h.settle();
    h.actor.send(acquired);
    h.actor.send({ type: 'drain' });
    await h.settle(); // jobs handed back first
    assert.deepEqual(h.toCoordinator, ['start', 'stop']);
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'draining');
    assert.deepEqual(h.toLease, ['renew', 'renew', 'release']);
    h.actor.send({ type: 'lease.released', key: 'node.n1' });
    assert.equal(h.actor.getSnapshot().value, 'stopped');
    assert.equal(h.actor.getSnapshot().status, 'done');
  });

  test('a drain that cannot hand back its jobs in time stops at the deadline, with the reason', async () => {
    const h = node({ handBackHangs: true });
    h.actor.start();
    await h.settle();
    h.actor.send(acquired);
    h.actor.send({ type: 'drain' });
    h.clock.increment(timing.drainDeadlineMs - 1);
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'draining');
    h.clock.increment(1);
    assert.equal(h.actor.getSnapshot().value, 'stopped');
    assert.match(h.actor.getSnapshot().context.error ?? '', /could not hand back its jobs within 3000 ms/);
  });

  test('fenced while draining (cut off from NATS): stops instead of re-joining, the loss recorded', async () => {
    const h = node({ handBackHangs: true });
    h.actor.start();
    await h.settle();
    h.actor.send(acquired);
    h.actor.send({ type: 'drain' });
    h.actor.send({ type: 'lease.lost', key: 'node.n1', epoch: 3, reason: 'deadline passed' });
    assert.equal(h.actor.getSnapshot().value, 'stopped');
    assert.match(h.actor.getSnapshot().context.error ?? '', /node lease lost/);
  });

  test('a lost connection shows as reconnecting and back', async () => {
    const h = node();
    h.actor.start();
    await h.settle();
    h.actor.send(acquired);
    h.actor.send({ type: 'nats.disconnected' });
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'reconnecting');
    h.actor.send({ type: 'nats.reconnected' });
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'ready');
  });

  test('re-joined while the link was still down: jobs parked for the link start once it is back', async () => {
    const h = node();
    h.actor.start();
    await h.settle();
    h.actor.send(acquired);
    h.actor.send({ type: 'nats.disconnected' });
    h.actor.send({ type: 'lease.lost', key: 'node.n1', epoch: 3, reason: 'deadline passed' });
    h.clock.increment(timing.pollIntervalMs);
    h.actor.send({ ...acquired, epoch: 9 }); // the new lease landed before the link was confirmed
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'ready');
    const before = h.resumed.length;
    h.actor.send({ type: 'nats.reconnected' });
    assert.equal(h.resumed.length, before + 1, 'assignments parked while unlinked are started');
    assert.equal(nodeStateName(h.actor.getSnapshot()), 'ready');
  });
});
