// The inspector's pure parts: the timeline (time travel), state ids, the
// record reconciliation, and a node's inspection feed (off without a viewer,
// coalesced, bounded) on a virtual clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, setup } from 'xstate';
import { inspectionFeed, type ShoalInspectionEvent } from '../../node/inspection.ts';
import { SimClock } from '../../chaos/sim/clock.ts';
import { activeStateIds, Timeline } from '../../inspector/model.ts';
import { JobStates } from '../../inspector/records.ts';
import { isTerminalState, type JobFilter, type JobRow, JobRows, noFilter, recordPath, selectJobs } from '../../inspector/jobs.ts';
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

  test('events arriving in any order, in batches, index like the same events sorted at once; the oldest go past the cap', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const events = Array.from(
      { length: 3_000 },
      (_, i) => tr(i, `j${Math.floor(rand() * 40)}`, null, `s${i}`, 1_000 + i * 10, `p${i % 3}`),
    );
    // Mostly in order, a few a little late, now and then a batch from long ago (a history line).
    const arrival = events.map((e, i) => ({ e, at: rand() < 0.1 ? i + rand() * 50 : rand() < 0.01 ? i + 2_000 : i })).sort((a, b) =>
      a.at - b.at
    );
    const t = new Timeline();
    const sorted = new Timeline();
    sorted.add([...events]);
    for (let i = 0; i < arrival.length; i += 1 + Math.floor(rand() * 20)) {
      t.add(arrival.slice(i, i + 1 + Math.floor(rand() * 20)).map((x) => x.e));
    }
    t.add(arrival.map((x) => x.e)); // every one again: each counted once
    assert.equal(t.length, events.length);
    for (const a of sorted.actors()) {
      const b = t.actor(a.key)!;
      assert.deepEqual(b.steps, a.steps, a.key);
      for (const i of [0, 500, 1_500, 2_999]) assert.equal(t.stateAt(b, i)?.to, sorted.stateAt(a, i)?.to);
    }
    for (const i of [0, 1, 999, 2_998, 2_999]) assert.equal(t.indexOf(sorted.event(i)!), i, 'an event is found where it now stands');
    assert.deepEqual([...t.machineActors()], []);
    const capped = new Timeline(1_000);
    capped.add(events);
    assert.ok(capped.length <= 1_000 && capped.length >= 900, `${capped.length} kept`);
    assert.equal(capped.event(capped.length - 1)!.seq, 2_999, 'the newest kept');
  });

  test('the jobs table keeps the newest row of each job, at most its size, and filters, sorts and travels back in time', () => {
    const row = (id: string, over: Partial<JobRow> = {}): JobRow => ({
      id,
      type: 'noop',
      state: 'succeeded',
      owner: 'n1',
      priority: 0,
      attempt: 1,
      progress: 1,
      createdAt: 1_000,
      updatedAt: 2_000,
      error: null,
      pendingReason: null,
      ...over,
    });
    const rows = new JobRows(3);
    assert.ok(rows.put(row('a', { updatedAt: 5_000 })));
    assert.equal(rows.put(row('a', { updatedAt: 4_000, state: 'queued' })), false, 'an older write does not replace a newer one');
    rows.put(row('b', { type: 'resize', priority: 9, owner: 'n2', createdAt: 3_000, state: 'running.computing' }));
    rows.put(row('c', { createdAt: 9_000, state: 'failed' }));
    rows.put(row('d', { createdAt: 9_500, state: 'queued' }));
    assert.equal(rows.size, 3);
    assert.equal(rows.get('a'), undefined, 'the least recently updated went first');
    const ids = (f: Partial<JobFilter>, now = 10_000, at?: (r: JobRow) => string | null) =>
      selectJobs(rows.values(), { ...noFilter, ...f }, now, at).map((x) => x.row.id);
    assert.deepEqual(ids({ sort: 'created' }), ['d', 'c', 'b']);
    assert.deepEqual(ids({ sort: 'priority' }), ['b', 'd', 'c']);
    assert.deepEqual(ids({ state: 'active' }).sort(), ['b', 'd']);
    assert.deepEqual(ids({ state: 'running' }), ['b']);
    assert.deepEqual(ids({ type: 'resize' }), ['b']);
    assert.deepEqual(ids({ text: 'RES' }), ['b'], 'the search matches the type, any case');
    assert.deepEqual(ids({ node: 'n2' }), ['b']);
    assert.deepEqual(ids({ minPriority: 5 }), ['b']);
    assert.deepEqual(ids({ sinceMs: 2_000, sort: 'created' }), ['d', 'c']);
    // Back in time: a job the timeline had not seen yet is left out; the others show their state then.
    const then = selectJobs(rows.values(), noFilter, 9_200, (r) => (r.id === 'd' ? null : 'queued'));
    assert.deepEqual(then.map((x) => [x.row.id, x.state]).sort(), [['b', 'queued'], ['c', 'queued']]);
    assert.equal(recordPath({ state: 'running', phase: null }), 'running.computing');
    assert.ok(isTerminalState('cancelled') && !isTerminalState('running.computing'));
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
