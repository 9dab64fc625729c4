// Jobs end to end on real processes: results checked against the true value,
// a node killed mid-job (resume from checkpoint, exactly one completion),
// idempotent submit, cancel, retries, timeout, unknown type, drain, garbage.
import type { RequestOf } from '../../api/contract.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { countPrimes } from '../../node/handlers.ts';
import { type LocalCluster, waitForReady, waitForStatus } from '../../harness/local.cluster.ts';
import { isTerminal } from '../../machines/job.machine.ts';
import type { JobRecord } from '../../api/contract.ts';
import { callApi } from '../../nats/client.ts';
import { ApiError } from '../../base/errors.ts';
import { names } from '../../nats/subjects.ts';
import { until, withCluster } from '../helpers.ts';
import { checkHistory } from '../../chaos/checker.ts';
import { readTransitions } from '../../nats/events.ts';

const n = names();

describe('jobs on 3 node processes, one nats-server, lease TTL 1 s', () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  const submit = (body: RequestOf<'jobs.submit'>) => callApi(nc, n, 'jobs.submit', body);
  const get = (id: string) => callApi(nc, n, 'jobs.get', { id });
  const wait = (id: string, timeoutMs = 30_000) => callApi(nc, n, 'jobs.wait', { id, timeoutMs }, timeoutMs + 5_000);
  /** The node process running job `id` once its progress passed `p`. */
  const ownerPast = async (id: string, p: number) => {
    const running = await until(`job ${id} to pass ${p * 100}%`, async () => {
      const r = await get(id);
      return r.state === 'running' && r.progress >= p ? r : null;
    }, 20_000);
    return c.nodes.find((x) => x.id === running.owner && x.running)!;
  };

  // Slots as plain counters here (a sleep holds its slot, nothing preempts): scheduling.test.ts covers phases and preemption.
  // --allow-exec: the retry test runs a command (exec is off by default: hostile.test.ts).
  withCluster({
    nodes: 3,
    nodeArgs: ['--io-slots', '0', '--no-preempt', '--allow-exec'],
  }, (fx) => ({ c, nc } = fx));

  test('primes jobs succeed exactly once with the true count', async () => {
    const limits = [1000, 50_000, 120_000, 7919];
    await Promise.all(limits.map((limit, i) => submit({ type: 'primes', input: { limit, chunk: 5000 }, id: `ok-${i}` })));
    for (const [i, limit] of limits.entries()) {
      const r = await wait(`ok-${i}`);
      assert.equal(r.state, 'succeeded');
      assert.deepEqual(r.result, { count: countPrimes(limit) });
      assert.equal(r.attempts.filter((a) => a.outcome === 'succeeded').length, 1);
    }
    // A success is routine: no line about it, least of all one that says it was refused.
    assert.doesNotMatch(c.logs(1_000), /ok-\d#\d+: succeed/);
  });

  test('kill -9 of the node running a job: it resumes elsewhere from its checkpoint, result still right', async () => {
    const limit = 400_000;
    await submit({ type: 'primes', input: { limit, chunk: 20_000, pauseMs: 150 }, id: 'migrate' });
    const victim = await ownerPast('migrate', 0.2);
    await victim.kill();
    const r = await wait('migrate');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.result, { count: countPrimes(limit) });
    assert.ok(r.attempts.length >= 2, JSON.stringify(r.attempts));
    assert.equal(r.attempts[0]!.outcome, 'orphaned');
    assert.equal(r.attempts[0]!.node, victim.id);
    const last = r.attempts[r.attempts.length - 1]!;
    assert.ok(last.resumedFrom > 0, `resumed from ${last.resumedFrom}`);
    assert.equal(r.attempts.filter((a) => a.outcome === 'succeeded').length, 1);
    c.addNode(victim.id);
    await waitForReady(c.urls, 3);
  });

  test('zombie fencing: a node frozen past its TTL mid-job is replaced; on waking its late writes are refused', async () => {
    const limit = 200_000;
    await submit({ type: 'primes', input: { limit, chunk: 10_000, pauseMs: 100 }, id: 'zombie' });
    const frozen = await ownerPast('zombie', 0.2);
    frozen.pause();
    let done: JobRecord;
    try {
      // A frozen node still holds its API subscription until the server drops it, so a request
      // can land there and go unanswered: ask with short timeouts, again and again.
      done = await until('the job to finish elsewhere', async () => {
        const r = await callApi(nc, n, 'jobs.get', { id: 'zombie' }, 1_000);
        return isTerminal(r) ? r : null;
      }, 30_000);
    } finally {
      frozen.resume();
    }
    assert.equal(done.state, 'succeeded');
    assert.notEqual(done.attempts[done.attempts.length - 1]!.node, frozen.id);
    // Give the zombie time to wake, find its lease gone, and try whatever it would.
    await waitForStatus(c.urls, (s) => s.nodes.find((x) => x.id === frozen.id)?.state === 'ready', {
      what: 'the woken node to re-join',
      timeoutMs: 10_000,
    });
    const after = await get('zombie');
    assert.deepEqual(after, done, 'the record kept the first result and nothing the zombie wrote');
    assert.deepEqual(after.result, { count: countPrimes(limit) });
    assert.equal(after.attempts[0]!.outcome, 'orphaned');
  });

  test('submit is idempotent by id: same body returns the job, another body is 409', async () => {
    const body = { type: 'noop', id: 'idem', input: { x: 1 } };
    const a = await submit(body);
    const b = await submit(body);
    assert.equal(a.created, true);
    assert.equal(b.created, false);
    assert.equal(b.id, 'idem');
    await assert.rejects(submit({ ...body, input: { x: 2 } }), (e: unknown) => e instanceof ApiError && e.status === 409);
    await assert.rejects(submit({ ...body, priority: 9 }), (e: unknown) => e instanceof ApiError && e.status === 409);
    // Attempts and timeout may come from the type's settings, which the answering node may know differently: not a conflict.
    assert.equal((await submit({ ...body, maxAttempts: 7, timeoutMs: 1_000 })).created, false);
    assert.equal((await wait('idem')).state, 'succeeded');
  });

  test('cancel: a running job stops and frees its slot; a finished job is left alone', async () => {
    await submit({ type: 'sleep', input: { ms: 60_000 }, id: 'long' });
    await until('the sleep job to run', async () => (await get('long')).state === 'running', 10_000).catch(async (err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(await get('long'))}\n${c.logs(300)}`);
    });
    const res = await callApi(nc, n, 'jobs.cancel', { id: 'long' });
    assert.deepEqual([res.cancelled, res.state], [true, 'cancelled']);
    assert.equal((await wait('long')).state, 'cancelled');
    await until('no node running it', async () => {
      const s = await callApi(nc, n, 'status');
      return s.nodes.every((x) => x.running === 0);
    }, 5_000);
    const again = await callApi(nc, n, 'jobs.cancel', { id: 'ok-0' });
    assert.deepEqual([again.cancelled, again.state], [false, 'succeeded']);
    await assert.rejects(callApi(nc, n, 'jobs.cancel', { id: 'no-such-job' }), (e: unknown) => e instanceof ApiError && e.status === 404);
  });

  test('priorities: with every slot busy, a queued job can be cancelled and the highest priority runs first', async () => {
    const fill = Array.from({ length: 12 }, (_, i) => `fill-${i}`);
    await Promise.all(fill.map((id) => submit({ type: 'sleep', input: { ms: 60_000 }, id })));
    await until('all 12 slots busy', async () => (await Promise.all(fill.map(get))).every((r) => r.state === 'running'), 15_000)
      .catch(async (err) => {
        const seen = (await Promise.all(fill.map(get))).map((r) =>
          `${r.id}:${r.state}@${r.owner}${r.pendingReason ? ` (${r.pendingReason})` : ''}`
        );
        const status = (await callApi(nc, n, 'status')).nodes.map((x) => `${x.id} ${JSON.stringify(x)}`);
        throw new Error(`${(err as Error).message}: ${seen.join(', ')}; nodes: ${status.join('; ')}\n${c.logs(300)}`);
      });
    await submit({ type: 'noop', id: 'p-low', priority: 1 });
    await submit({ type: 'noop', id: 'q-cancel', priority: 5 });
    await submit({ type: 'noop', id: 'p-high', priority: 9 });
    const cancelled = await callApi(nc, n, 'jobs.cancel', { id: 'q-cancel' });
    assert.deepEqual([cancelled.cancelled, cancelled.state], [true, 'cancelled']);
    assert.equal((await get('p-low')).state, 'queued');
    await callApi(nc, n, 'jobs.cancel', { id: 'fill-0' }); // one slot frees
    const high = await wait('p-high');
    assert.equal(high.state, 'succeeded');
    const low = await get('p-low');
    assert.ok(
      low.state === 'queued' || (low.attempts[0]?.assignedAt ?? 0) >= high.attempts[0]!.assignedAt,
      'the higher priority was placed first',
    );
    await Promise.all(fill.slice(1).map((id) => callApi(nc, n, 'jobs.cancel', { id })));
    assert.equal((await wait('p-low')).state, 'succeeded');
  });

  test('a failing handler is retried with backoff up to maxAttempts, then fails with the error', async () => {
    await submit({ type: 'exec', input: { cmd: 'sh', args: ['-c', 'echo nope >&2; exit 3'] }, id: 'flaky', maxAttempts: 2 });
    const r = await wait('flaky');
    assert.equal(r.state, 'failed');
    assert.match(r.error ?? '', /exited with 3.*nope/s);
    assert.deepEqual(r.attempts.map((a) => a.outcome), ['failed', 'failed']);
    assert.ok(r.attempts[1]!.startedAt! - r.attempts[0]!.endedAt! >= 150, `backed off before retrying: ${JSON.stringify(r.attempts)}`);
  });

  test('a handler past its timeout is aborted and counts as a failed attempt', async () => {
    await submit({ type: 'sleep', input: { ms: 30_000 }, id: 'slow', timeoutMs: 300, maxAttempts: 1 });
    const r = await wait('slow');
    assert.equal(r.state, 'failed');
    assert.match(r.error ?? '', /timed out after 300 ms/);
    assert.equal(r.attempts[0]!.outcome, 'timeout');
  });

  test('an unknown job type waits with its reason, then fails with a clear error after its pending timeout', async () => {
    await submit({ type: 'no-such-type', id: 'unknown', pendingTimeoutMs: 1_500 });
    const waiting = await until('its pending reason', async () => {
      const r = await get('unknown');
      return r.pendingReason ? r : null;
    }, 5_000);
    assert.equal(waiting.state, 'queued');
    assert.match(waiting.pendingReason!, /no live node handles type 'no-such-type' \(live nodes handle: .*noop/);
    const r = await wait('unknown', 10_000);
    assert.equal(r.state, 'failed');
    assert.match(r.error ?? '', /unknown job type 'no-such-type': no live node handled it within 1500 ms/);
    assert.ok(r.updatedAt - r.createdAt >= 1_500, 'not before its pending timeout');
  });

  test('list, get 404, and wait 408', async () => {
    const page = await callApi(nc, n, 'jobs.list', { state: 'succeeded', limit: 2 });
    assert.equal(page.jobs.length, 2);
    assert.ok(page.cursor);
    assert.ok(page.jobs.every((j) => j.state === 'succeeded'));
    // Paging by 2 gives what one page of all gives, in the same order (oldest first), each once.
    const all = (await callApi(nc, n, 'jobs.list', { state: 'succeeded', limit: 1000 })).jobs.map((j) => j.id);
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const p = await callApi(nc, n, 'jobs.list', { state: 'succeeded', limit: 2, ...(cursor ? { cursor } : {}) });
      paged.push(...p.jobs.map((j) => j.id));
      cursor = p.cursor;
    } while (cursor);
    assert.deepEqual(paged, all);
    assert.ok(all.length >= 4, `${all.length} succeeded jobs listed`);
    await assert.rejects(get('missing'), (e: unknown) => e instanceof ApiError && e.status === 404);
    await submit({ type: 'sleep', input: { ms: 5_000 }, id: 'waited' });
    await assert.rejects(
      callApi(nc, n, 'jobs.wait', { id: 'waited', timeoutMs: 200 }),
      (e: unknown) => e instanceof ApiError && e.status === 408,
    );
  });

  test('drain: the node hands its job back, exits 0, and the job finishes elsewhere from its checkpoint', async () => {
    const limit = 300_000;
    await submit({ type: 'primes', input: { limit, chunk: 20_000, pauseMs: 150 }, id: 'drained' });
    const owner = await ownerPast('drained', 0.2);
    await callApi(nc, n, 'nodes.drain', { id: owner.id });
    assert.equal((await owner.exited).code, 0);
    const r = await wait('drained');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.result, { count: countPrimes(limit) });
    assert.equal(r.attempts[0]!.outcome, 'preempted');
    assert.ok(r.attempts[r.attempts.length - 1]!.resumedFrom > 0);
    c.addNode(owner.id);
    await waitForReady(c.urls, 3);
  });

  test('the whole history of this cluster passes the chaos checker', async () => {
    const history = await readTransitions(nc, n);
    const records = (await callApi(nc, n, 'jobs.list', { limit: 1000 })).jobs;
    assert.ok(history.some((t) => t.kind === 'job' && t.event === 'job.checkpoint'), 'job writes and checkpoints are in the history');
    const expected = (
      type: string,
      input: unknown,
    ) => (type === 'primes' ? { count: countPrimes((input as { limit: number }).limit) } : undefined);
    const violations = checkHistory(history, { records, expected });
    assert.deepEqual(violations.map((v) => `${v.invariant}: ${v.message}`), []);
  });

  test('garbage to every endpoint gets a 4xx and the service keeps serving', async () => {
    const endpoints = ['status', 'jobs.submit', 'jobs.get', 'jobs.list', 'jobs.wait', 'jobs.cancel', 'nodes.drain'];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...endpoints),
        fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.json({ maxDepth: 2 }).map((j) => new TextEncoder().encode(j))),
        fc.boolean(),
        async (ep, body, asCbor) => {
          const h = headers();
          if (asCbor) h.set('Content-Type', 'application/cbor');
          const m = await nc.request(n.api(ep), body, { timeout: 5000, headers: h });
          const code = Number(m.headers?.get('Nats-Service-Error-Code') ?? 200);
          assert.ok(code < 500, `${ep} answered ${code} to ${Buffer.from(body).toString('hex')}`);
        },
      ),
      { numRuns: 200 },
    );
    const bad = await nc.request(n.api('jobs.submit'), new TextEncoder().encode('{"type":"noop","priority":42}'), { timeout: 5000 });
    assert.equal(bad.headers?.get('Nats-Service-Error-Code'), '400');
    assert.match(bad.json<{ error: { message: string } }>().error.message, /priority/);
    assert.ok((await callApi(nc, n, 'status')).leader);
  });
});
