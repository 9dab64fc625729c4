// The inspector's pure parts: the timeline (time travel), state ids, the
// record reconciliation, and a node's inspection feed (off without a viewer,
// coalesced, bounded) on a virtual clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, setup } from 'xstate';
import { inspectionFeed, type ShoalInspectionEvent } from '../../node/inspection.ts';
import { SimClock } from '../../chaos/sim/clock.ts';
import { activeStateIds, Timeline } from '../../inspector/model.ts';
import { JobStates, recordPath } from '../../inspector/records.ts';
import { newJobRecord } from '../../machines/job.machine.ts';
import type { Transition } from '../../nats/events.ts';

const tr = (seq: number, actor: string, from: string | null, to: string, wall: number, instance = 'i1'): Transition => ({
  kind: 'job',
  actor,
  node: 'n1',
  instance,
  pid: 1,
  from,
  to,
  event: 'e',
  epoch: 1,
  wall,
  mono: wall,
  seq,
});

describe('inspector model', () => {
  test('the timeline orders events by time across processes and reads back each actor at any point', () => {
    const t = new Timeline();
    assert.equal(t.add([tr(1, 'a', null, 'queued', 100), tr(3, 'a', 'assigned', 'running.computing', 300)]), 2);
    // A late process's event in between, and a duplicate: sorted in, counted once.
    assert.equal(t.add([tr(1, 'a', 'queued', 'assigned', 200, 'i2'), tr(1, 'a', null, 'queued', 100)]), 1);
    const a = t.actor('job:a')!;
    assert.deepEqual([0, 1, 2].map((i) => t.stateAt(a, i)!.to), ['queued', 'assigned', 'running.computing']);
    assert.equal(t.indexAt(250), 2);
    assert.equal(t.add([tr(2, 'b', null, 'queued', 50)]), 1);
    assert.equal(t.stateAt(t.actor('job:a')!, 0), null, 'a did not exist before its first event');
  });

  test('a state path activates every prefix under the machine id', () => {
    assert.deepEqual(activeStateIds('job', 'running.computing'), ['job', 'job.running', 'job.running.computing']);
    assert.deepEqual(activeStateIds('job', 'queued'), ['job', 'job.queued']);
  });

  test('a record whose state no event showed becomes a transition; one an event showed does not', () => {
    const states = new JobStates();
    const r = {
      ...newJobRecord({ id: 'j1', type: 'noop', input: null, priority: 0, maxAttempts: 3, timeoutMs: 1_000 }, 1_000),
      updatedAt: 1_000,
    };
    assert.equal(recordPath(r), 'queued');
    const made = states.missing(r, 7);
    assert.equal(made?.to, 'queued');
    assert.equal(made?.from, null);
    assert.equal(made?.instance, 'kv');
    states.see([tr(1, 'j1', null, 'queued', 1_000)]);
    assert.equal(states.missing(r, 7), null);
    const running = { ...r, state: 'running' as const, phase: 'computing' as const, owner: 'n2', updatedAt: 2_000 };
    assert.deepEqual(
      { from: states.missing(running, 9)?.from, to: states.missing(running, 9)?.to, node: states.missing(running, 9)?.node },
      { from: 'queued', to: 'running.computing', node: 'n2' },
    );
    states.see([tr(2, 'j1', 'running.computing', 'succeeded', 3_000)]);
    assert.equal(states.missing(running, 9), null, 'an older record than the last event is not news');
  });
});

describe('inspection feed', () => {
  const machine = setup({ types: { events: {} as { type: 'go' } } }).createMachine({
    id: 'node',
    initial: 'a',
    states: { a: { on: { go: 'b' } }, b: { on: { go: 'a' } } },
  });

  // @statelyai/inspect hands each event on after a zero-delay (real) timer: let it run.
  const handedOn = () => new Promise((r) => setTimeout(r, 0));
  const send = async (actor: { send(e: { type: 'go' }): void }, times = 1) => {
    for (let i = 0; i < times; i++) actor.send({ type: 'go' });
    await handedOn();
  };

  function feedOn(options: { maxQueue?: number } = {}) {
    const clock = new SimClock(1_000);
    const batches: ShoalInspectionEvent[][] = [];
    let dropped = 0;
    const feed = inspectionFeed({
      nodeId: 'n1',
      clock,
      publish: (b) => (batches.push(b), true),
      onDropped: (k) => (dropped += k),
      coalesceMs: 100,
      viewerTtlMs: 1_000,
      ...options,
    });
    const actor = createActor(machine, { inspect: feed.inspect, clock });
    actor.start();
    return { clock, batches, feed, actor, dropped: () => dropped };
  }

  test('without a viewer nothing is sent; a sync returns every actor and turns the feed on for a while', async () => {
    const { clock, batches, feed, actor } = feedOn();
    await send(actor);
    await clock.advance(500);
    assert.equal(batches.length, 0);
    const synced = feed.sync();
    assert.equal(synced.length, 1);
    assert.equal(synced[0]!.type, '@xstate.actor');
    assert.ok(synced[0]!.sessionId.startsWith('n1:'), 'session ids carry the node id');
    assert.deepEqual(synced[0]!.shoal, { node: 'n1', kind: 'node', actor: 'n1' });
    await send(actor);
    await clock.advance(150);
    assert.equal(batches.length, 1);
    assert.ok(batches[0]!.some((e) => e.type === '@xstate.event'));
    await clock.advance(2_000); // the viewer went quiet
    await send(actor);
    await clock.advance(150);
    assert.equal(batches.length, 1, 'a viewer that left costs nothing');
  });

  test('snapshots are coalesced to one per actor per interval; a full queue drops the oldest', async () => {
    const { clock, batches, feed, actor, dropped } = feedOn({ maxQueue: 5 });
    feed.sync();
    await send(actor, 10);
    await clock.advance(150);
    assert.equal(batches.length, 1);
    const snaps = batches[0]!.filter((e) => e.type === '@xstate.snapshot');
    assert.equal(snaps.length, 1, 'one snapshot per actor per interval');
    assert.equal(batches[0]!.length, 5, 'bounded');
    assert.ok(dropped() > 0, 'the overflow is counted as dropped');
    assert.equal((snaps[0] as unknown as { snapshot: { value: string } }).snapshot.value, 'a', 'the latest snapshot wins');
  });
});
