// Priorities, phases and resources on real processes: an urgent job preempts
// a low-priority one (which resumes from its checkpoint), a victim that
// ignores the abort is fenced, I/O phases free compute slots, and jobs run
// only where their requirements are met (waiting with a reason meanwhile).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type NatsConnection } from '@nats-io/transport-node';
import { countPrimes } from '../../node/handlers.ts';
import { type LocalCluster, waitForStatus } from '../../harness/local.cluster.ts';
import { shoalCommand } from '../../harness/spawn.ts';
import { ApiError } from '../../base/errors.ts';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { until, withCluster } from '../helpers.ts';

const n = names();
const run = promisify(execFile);

const get = (nc: NatsConnection, id: string) => callApi(nc, n, 'jobs.get', { id });
const waitFor = (nc: NatsConnection, id: string) => callApi(nc, n, 'jobs.wait', { id, timeoutMs: 60_000 }, 65_000);
/** A primes job long enough to be running when the urgent one comes: checkpoints every chunk, pauses between. */
const longPrimes = { limit: 400_000, chunk: 10_000, pauseMs: 100 };

describe('preemption: 2 nodes with 2 compute slots each, every slot busy with priority-1 jobs', () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  withCluster({
    nodes: 2,
    slots: 2,
    nodeArgs: ['--io-slots', '0', '--preempt-grace', '500', '--jobs', 'test/fixtures/jobs.ts'],
  }, (fx) => ({ c, nc } = fx));

  test("a priority-9 job starts at once in a victim's slot; the victim checkpoints, is requeued and resumes; all finish once", async () => {
    const low = ['low-1', 'low-2', 'low-3', 'low-4'];
    for (const id of low) await callApi(nc, n, 'jobs.submit', { id, type: 'primes', input: longPrimes, priority: 1 });
    await until(
      'four low-priority jobs running and checkpointing',
      async () => (await Promise.all(low.map((id) => get(nc, id)))).every((r) => r.state === 'running' && r.progress > 0),
      20_000,
    );
    await callApi(nc, n, 'jobs.submit', { id: 'urgent', type: 'sleep', input: { ms: 300 }, priority: 9 });
    const urgent = await waitFor(nc, 'urgent');
    assert.equal(urgent.state, 'succeeded');
    assert.equal(urgent.attempts.length, 1);
    const startMs = urgent.attempts[0]!.startedAt! - urgent.createdAt;
    // The bench measures the switch (goal <= 50 ms); here only a regression guard: far below a low job's length.
    assert.ok(startMs < 2_000, `urgent job started ${startMs} ms after submit, with every slot busy`);

    const done = await Promise.all(low.map((id) => waitFor(nc, id)));
    const truth = countPrimes(longPrimes.limit);
    for (const r of done) {
      assert.equal(r.state, 'succeeded', `${r.id}: ${r.error}`);
      assert.deepEqual(r.result, { count: truth });
      assert.equal(r.attempts.filter((a) => a.outcome === 'succeeded').length, 1);
    }
    const victims = done.filter((r) => r.preemptions > 0);
    assert.equal(victims.length, 1, 'one slot was needed: one victim');
    const v = victims[0]!;
    assert.equal(v.attempts[0]!.outcome, 'preempted');
    assert.equal(v.attempts[0]!.node, urgent.attempts[0]!.node, "the urgent job ran in the victim's slot");
    assert.ok(v.attempts[1]!.resumedFrom > 0, 'the victim resumed from its checkpoint');
    assert.ok(v.attempts[0]!.endedAt! - urgent.attempts[0]!.startedAt! <= 1_500, 'the victim yielded within its grace');
  });

  test('equal priority never preempts: a priority-1 job waits for a free slot', async () => {
    const low = ['eq-1', 'eq-2', 'eq-3', 'eq-4'];
    for (const id of low) await callApi(nc, n, 'jobs.submit', { id, type: 'primes', input: longPrimes, priority: 1 });
    await until(
      'four jobs running',
      async () => (await Promise.all(low.map((id) => get(nc, id)))).every((r) => r.state === 'running'),
      20_000,
    );
    await callApi(nc, n, 'jobs.submit', { id: 'eq-late', type: 'noop', priority: 1 });
    const late = await waitFor(nc, 'eq-late');
    const first = Math.min(...(await Promise.all(low.map((id) => waitFor(nc, id)))).map((r) => r.attempts.at(-1)!.endedAt!));
    assert.ok(late.attempts[0]!.startedAt! >= first, 'it started only once a running job had ended');
    for (const id of low) assert.equal((await get(nc, id)).preemptions, 0);
  });

  test('a victim that ignores the abort is fenced after its grace: its late checkpoints are refused; the job ends once', async () => {
    const hogs = ['hog-1', 'hog-2', 'hog-3'];
    await callApi(nc, n, 'jobs.submit', { id: 'stubborn', type: 'stubborn', input: { steps: 60 }, priority: 0 });
    for (const id of hogs) await callApi(nc, n, 'jobs.submit', { id, type: 'primes', input: longPrimes, priority: 1 });
    await until(
      'every slot busy',
      async () => (await Promise.all(['stubborn', ...hogs].map((id) => get(nc, id)))).every((r) => r.state === 'running'),
      20_000,
    );
    await callApi(nc, n, 'jobs.submit', { id: 'urgent-2', type: 'noop', priority: 9 });
    assert.equal((await waitFor(nc, 'urgent-2')).state, 'succeeded');
    const r = await waitFor(nc, 'stubborn');
    assert.equal(r.state, 'succeeded');
    assert.equal(r.attempts[0]!.outcome, 'preempted', 'the priority-0 job was the victim');
    assert.equal(r.attempts.filter((a) => a.outcome === 'succeeded').length, 1);
    assert.ok((r.result as { resumedAt: number }).resumedAt > 0, 'resumed from a checkpoint');
    await until(
      "the zombie attempt's late checkpoints refused",
      async () => /job stubborn#1: checkpoint \d+ refused: preempted: past its checkpoint deadline/.test(c.logs(400)),
      5_000,
    );
    await Promise.all(hogs.map((id) => waitFor(nc, id)));
  });
});

describe('phases: a node with 1 compute slot and 4 I/O slots', () => {
  let nc: NatsConnection;
  withCluster({
    nodes: 1,
    slots: 1,
    nodeArgs: ['--io-slots', '4', '--jobs', 'test/fixtures/jobs.ts'],
  }, (fx) => ({ nc } = fx));

  test('jobs waiting on I/O overlap on one compute slot; their compute phases never do', async () => {
    const ids = ['io-1', 'io-2', 'io-3', 'io-4'];
    await Promise.all(ids.map((id) => callApi(nc, n, 'jobs.submit', { id, type: 'ioThenCompute', input: { ioMs: 600, computeMs: 150 } })));
    const done = await Promise.all(ids.map((id) => waitFor(nc, id)));
    for (const r of done) assert.equal(r.state, 'succeeded', `${r.id}: ${r.error}`);
    const starts = done.map((r) => r.attempts[0]!.startedAt!);
    const ends = done.map((r) => r.attempts[0]!.endedAt!);
    assert.ok(Math.max(...starts) < Math.min(...ends), 'all four were running at once on a 1-slot node');
    const computing = done.map((r) => r.result as { computeStart: number; computeEnd: number }).sort((a, b) =>
      a.computeStart - b.computeStart
    );
    for (let i = 1; i < computing.length; i++) {
      assert.ok(computing[i]!.computeStart >= computing[i - 1]!.computeEnd, 'one compute phase at a time');
    }
    const st = await callApi(nc, n, 'status', {});
    assert.deepEqual(st.nodes.map((x) => [x.slots, x.ioSlots]), [[1, 4]]);
  });
});

describe('requirements: n1 has a GPU and zone=edge, n2 has neither', () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  withCluster({
    nodes: 2,
    slots: 2,
    // n4 joins later with a GPU (no label); n3 joins later without one.
    perNode: (id) => ({
      args: id === 'n1' ? ['--gpu', '1', '--label', 'zone=edge', '--mem-mb', '4096'] : id === 'n4' ? ['--gpu', '1'] : ['--mem-mb', '2048'],
    }),
  }, (fx) => ({ c, nc } = fx));

  test('malformed requirements are a 400 and nothing is stored', async () => {
    for (const requires of [{ gpu: -1 }, { memMb: 'lots' }, { cpu: 2 }, { labels: { zone: 5 } }, { labels: { 'a=b': 'c' } }]) {
      await assert.rejects(
        // Malformed on purpose: past the contract's types, to the service's validation.
        callApi(nc, n, 'jobs.submit', { id: 'bad-req', type: 'noop', requires } as never),
        (e: unknown) => e instanceof ApiError && e.status === 400,
        JSON.stringify(requires),
      );
    }
    await assert.rejects(get(nc, 'bad-req'), (e: unknown) => e instanceof ApiError && e.status === 404);
  });

  test('jobs run only where their labels, memory and GPUs are', async () => {
    const jobs = [
      { id: 'edge-1', requires: { labels: { zone: 'edge' } } },
      { id: 'mem-3g', requires: { memMb: 3_000 } },
      { id: 'gpu-a', requires: { gpu: 1 } },
    ];
    for (const j of jobs) await callApi(nc, n, 'jobs.submit', { ...j, type: 'sleep', input: { ms: 100 } });
    for (const j of jobs) {
      const r = await waitFor(nc, j.id);
      assert.equal(r.state, 'succeeded');
      assert.equal(r.attempts.at(-1)!.node, 'n1', `${j.id} ran on n1`);
    }
  });

  test('no live node satisfies it: queued with a reason (job, status, CLI); with a pending timeout it fails', async () => {
    await callApi(nc, n, 'jobs.submit', { id: 'mars', type: 'noop', requires: { labels: { zone: 'mars' } } });
    await callApi(nc, n, 'jobs.submit', { id: 'huge', type: 'noop', requires: { memMb: 100_000 }, pendingTimeoutMs: 1_000 });
    await until(
      'the reason on the record',
      async () => (await get(nc, 'mars')).pendingReason === 'no live node has label zone=mars',
      5_000,
    );
    const huge = await waitFor(nc, 'huge');
    assert.equal(huge.state, 'failed');
    assert.match(huge.error!, /could not be placed within 1000 ms: no live node has 100000 MB of memory \(most: 4096 MB\)/);
    const st = await callApi(nc, n, 'status', {});
    assert.equal(st.pending.byReason['no live node has label zone=mars'], 1);
    const [cmd, args] = shoalCommand('node', ['job', 'mars', '--nats', c.urls[0]!]);
    const { stdout } = await run(cmd, args);
    assert.match(stdout, /waiting: no live node has label zone=mars/);
    assert.match(stdout, /requires label zone=mars/);
    await callApi(nc, n, 'jobs.cancel', { id: 'mars' });
  });

  test('the only GPU node dies: its job waits with the reason, then runs (from its checkpoint) when a GPU node joins', async () => {
    await callApi(nc, n, 'jobs.submit', { id: 'gpu-long', type: 'primes', input: longPrimes, requires: { gpu: 1 } });
    await until('the GPU job running and checkpointing', async () => {
      const r = await get(nc, 'gpu-long');
      return r.state === 'running' && r.progress > 0.1;
    }, 20_000);
    await c.nodes.find((p) => p.id === 'n1')!.kill();
    await until(
      'the GPU job waiting with its reason',
      async () => (await get(nc, 'gpu-long')).pendingReason === 'no live node has 1 GPU (most: 0)',
      10_000,
    );
    assert.equal((await get(nc, 'gpu-long')).state, 'queued');
    // A node without a GPU joins: still waiting. Then one with a GPU: it runs there.
    c.addNode('n3');
    await waitForStatus(c.urls, (v) => v.nodes.some((x) => x.id === 'n3' && x.state === 'ready'), { timeoutMs: 20_000 });
    assert.equal((await get(nc, 'gpu-long')).state, 'queued');
    c.addNode('n4');
    const r = await waitFor(nc, 'gpu-long');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.result, { count: countPrimes(longPrimes.limit) });
    assert.equal(r.attempts.at(-1)!.node, 'n4');
    assert.ok(r.attempts.at(-1)!.resumedFrom > 0, 'resumed from its checkpoint');
    assert.equal(r.pendingReason, null);
  });
});
