// The coordinator driven by lease reports alone (its lease child is inert):
// examples, every state reachable, and a property over random event sequences.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { getShortestPaths } from 'xstate/graph';
import { type CoordinatorEvent, coordinatorMachine, recoverIntervalMs } from '../../machines/coordinator.machine.ts';
import { SimulatedClock } from 'xstate';
import { coordinatorHarness as coordinator, coordinatorInput as input } from './machine.harness.ts';

const acquired = (epoch: number): CoordinatorEvent => ({ type: 'lease.acquired', key: 'leader', epoch, validUntil: 1e12 });

describe('coordinator machine', () => {
  test('idle until started, then candidate → leader on lease.acquired, and runs recovery under its epoch', async () => {
    const { actor, recovered } = coordinator();
    actor.start();
    assert.ok(actor.getSnapshot().matches('idle'));
    actor.send(acquired(5));
    assert.ok(actor.getSnapshot().matches('idle'), 'no leadership while not started');
    actor.send({ type: 'start' });
    assert.ok(actor.getSnapshot().matches({ active: 'candidate' }));
    actor.send(acquired(5));
    assert.ok(actor.getSnapshot().matches({ active: 'leader' }));
    assert.equal(actor.getSnapshot().context.epoch, 5);
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(recovered[0]?.epoch, 5);
    assert.ok(actor.getSnapshot().matches({ active: { leader: 'placing' } }));
    actor.stop();
  });

  test('lease.lost makes a leader a follower at once and forgets its epoch', () => {
    const { actor } = coordinator();
    actor.start();
    actor.send({ type: 'start' });
    actor.send(acquired(5));
    actor.send({ type: 'lease.lost', key: 'leader', epoch: 5, reason: 'deadline' });
    assert.ok(actor.getSnapshot().matches({ active: 'follower' }));
    assert.equal(actor.getSnapshot().context.epoch, null);
    actor.stop();
  });

  test('a leader that lost its connection runs no duty until a renewal after reconnecting confirms its lease', async () => {
    const { actor, renews, recovered } = coordinator();
    actor.start();
    actor.send({ type: 'start' });
    actor.send(acquired(5));
    await new Promise((r) => setTimeout(r, 0));
    const passes = recovered.length;
    actor.send({ type: 'connection.lost' });
    assert.ok(actor.getSnapshot().matches({ active: { leader: { suspended: 'disconnected' } } }));
    // Followers may have taken the lease on "no responders": a renewal that lands meanwhile proves nothing for later.
    actor.send({ type: 'lease.renewed', key: 'leader', epoch: 5, validUntil: 1e12 });
    assert.ok(actor.getSnapshot().matches({ active: { leader: 'suspended' } }));
    actor.send({ type: 'connection.restored' });
    assert.ok(actor.getSnapshot().matches({ active: { leader: { suspended: 'confirming' } } }));
    assert.equal(renews.length, 1, 'asks its lease to renew at once');
    assert.equal(recovered.length, passes, 'no duty pass while suspended');
    actor.send({ type: 'lease.renewed', key: 'leader', epoch: 5, validUntil: 1e12 });
    assert.ok(actor.getSnapshot().matches({ active: { leader: 'recovering' } }), 'a fresh recovery pass once confirmed');
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(recovered.length, passes + 1);
    actor.send({ type: 'connection.lost' });
    actor.send({ type: 'lease.lost', key: 'leader', epoch: 5, reason: 'conflict' });
    assert.ok(actor.getSnapshot().matches({ active: 'follower' }), 'a lost lease ends a suspended leadership');
    actor.stop();
  });

  test('a pass due while the lease is valid but not confirmed lately (a stalled process) waits for a renewal first', async () => {
    const clock = new SimulatedClock();
    let fresh = true;
    const { actor, renews, recovered } = coordinator({ clock, leaseFresh: () => fresh });
    actor.start();
    actor.send({ type: 'start' });
    actor.send(acquired(5));
    await new Promise((r) => setTimeout(r, 0));
    assert.ok(actor.getSnapshot().matches({ active: { leader: 'placing' } }));
    const passes = recovered.length;
    fresh = false; // woken late: its last confirmed renewal is older than a renew interval and a margin
    clock.increment(recoverIntervalMs(input.lease.timing));
    assert.ok(actor.getSnapshot().matches({ active: { leader: { suspended: 'confirming' } } }));
    assert.equal(renews.length, 1, 'asks its lease to renew');
    assert.equal(recovered.length, passes, 'no pass on the stale lease');
    fresh = true;
    actor.send({ type: 'lease.renewed', key: 'leader', epoch: 5, validUntil: 1e12 });
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(recovered.length, passes + 1, 'the pass runs once the lease is confirmed');
    actor.stop();
  });

  test('stop steps down: releases the lease, reports stopped once released', () => {
    const { actor, released, stopped } = coordinator();
    actor.start();
    actor.send({ type: 'start' });
    actor.send(acquired(5));
    actor.send({ type: 'stop' });
    assert.ok(actor.getSnapshot().matches({ active: 'steppingDown' }));
    assert.equal(released.length, 1);
    assert.equal(actor.getSnapshot().context.epoch, null, 'no epoch while stepping down');
    assert.equal(stopped.length, 0, 'not stopped before the release is confirmed');
    actor.send({ type: 'lease.released', key: 'leader' });
    assert.ok(actor.getSnapshot().matches('idle'));
    assert.equal(stopped.length, 1);
    actor.stop();
  });

  test('every state is reachable (xstate/graph)', () => {
    const machine = coordinatorMachine.provide({
      guards: { leaseValid: () => true, leaseFresh: () => true },
      actions: { reportStopped: () => {} },
    });
    const paths = getShortestPaths(machine, {
      input,
      events: [
        { type: 'start' },
        { type: 'stop' },
        { type: 'lease.acquiring', key: 'leader' },
        acquired(3),
        { type: 'lease.standby', key: 'leader', holder: { id: 'n2', instance: 'x' } },
        { type: 'lease.lost', key: 'leader', epoch: 3, reason: 'x' },
        { type: 'lease.released', key: 'leader' },
        { type: 'connection.lost' },
        { type: 'connection.restored' },
        { type: 'lease.renewed', key: 'leader', epoch: 3, validUntil: 1e12 },
      ],
    });
    const reached = new Set(paths.map((p) => JSON.stringify(p.state.value)));
    for (
      const v of [
        'idle',
        { active: 'candidate' },
        { active: 'follower' },
        { active: { leader: 'recovering' } },
        { active: { leader: { suspended: 'disconnected' } } },
        { active: { leader: { suspended: 'confirming' } } },
        { active: 'steppingDown' },
      ]
    ) {
      assert.ok(reached.has(JSON.stringify(v)), `reaches ${JSON.stringify(v)}; got ${[...reached].join(' ')}`);
    }
  });

  test('property: no event sequence puts it in leader unless its lease last reported the lease held', () => {
    const leaseReport = fc.oneof(
      fc.constant<CoordinatorEvent>({ type: 'start' }),
      fc.constant<CoordinatorEvent>({ type: 'stop' }),
      fc.constant<CoordinatorEvent>({ type: 'lease.acquiring', key: 'leader' }),
      fc.integer({ min: 1, max: 1000 }).map((e) => acquired(e)),
      fc.integer({ min: 1, max: 1000 }).map((e): CoordinatorEvent => ({
        type: 'lease.renewed',
        key: 'leader',
        epoch: e,
        validUntil: 1e12,
      })),
      fc.constant<CoordinatorEvent>({ type: 'lease.standby', key: 'leader', holder: { id: 'n2', instance: 'x' } }),
      fc.constant<CoordinatorEvent>({ type: 'lease.lost', key: 'leader', epoch: null, reason: 'x' }),
      fc.constant<CoordinatorEvent>({ type: 'lease.released', key: 'leader' }),
      fc.constant<CoordinatorEvent>({ type: 'connection.lost' }),
      fc.constant<CoordinatorEvent>({ type: 'connection.restored' }),
    );
    fc.assert(
      fc.property(fc.array(leaseReport, { maxLength: 40 }), (events) => {
        const { actor } = coordinator();
        actor.start();
        let held: number | null = null; // epoch the lease last reported held
        for (const e of events) {
          if (e.type === 'lease.acquired') held = e.epoch;
          else if (e.type.startsWith('lease.') && e.type !== 'lease.renewed') held = null;
          actor.send(e);
          const s = actor.getSnapshot();
          assert.equal(s.status, 'active', 'the machine never errors');
          if (s.matches({ active: 'leader' })) {
            assert.notEqual(held, null, `leader without a held lease after ${events.map((x) => x.type).join(', ')}`);
            assert.equal(s.context.epoch, held, 'acts under the epoch its lease reported');
          }
        }
        actor.stop();
      }),
      { numRuns: 2000 },
    );
  });
});
