// The package's Worker and client in this process against a real nats-server:
// a type's retry policy and timeout apply to submits by name too, a handler's
// NonRetryableError ends the job at once, a worker installs no signal
// handlers, and stopping one hands its running job to another worker, which
// resumes it from its checkpoint.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { type NatsServer, startServer } from '../../harness/launcher.ts';
import { type Client, createClient, JobFailedError } from '../../sdk/client.ts';
import { defineJob, NonRetryableError, Worker } from '../../sdk/worker.ts';
import { until } from '../helpers.ts';
import { context as otelContext, propagation, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

const calls = new Map<string, number>();
const flaky = defineJob({
  type: 'flaky',
  input: z.object({ key: z.string(), failures: z.number().int() }),
  retry: { maxAttempts: 4, backoff: 'fixed', baseMs: 300 },
  timeoutMs: 20_000,
  retentionMs: 3_600_000,
  handler: async ({ key, failures }) => {
    const n = (calls.get(key) ?? 0) + 1;
    calls.set(key, n);
    if (n <= failures) throw new Error(`failure ${n}`);
    return { calls: n };
  },
});
const refuse = defineJob({
  type: 'refuse',
  handler: () => {
    throw new NonRetryableError('never');
  },
});
const steps = defineJob({
  type: 'steps',
  input: z.object({ n: z.number().int() }),
  handler: async ({ n }, ctx) => {
    let i = (ctx.restored as { i: number } | undefined)?.i ?? 0;
    const from = i;
    for (; i < n; i++) {
      await ctx.sleep(100);
      await ctx.checkpoint({ i: i + 1 }, (i + 1) / n);
    }
    return { from };
  },
});

const limited = defineJob({
  type: 'limited',
  concurrency: 2,
  handler: async (_input, ctx) => {
    await ctx.sleep(400);
    return null;
  },
});

describe('Worker and client from the package, in this process', () => {
  let server: NatsServer;
  let client: Client;
  let w1: Worker;
  const workers: Worker[] = [];
  const start = async (id: string, jobs: Parameters<typeof Worker.start>[0]['jobs'], slots: number) => {
    const w = await Worker.start({ servers: server.url, jobs, id, slots, log: false });
    workers.push(w);
    return w;
  };
  const signalsBefore = process.listenerCount('SIGTERM') + process.listenerCount('SIGINT');

  before(async () => {
    server = await startServer();
    w1 = await start('w1', [flaky, refuse, steps, limited], 2);
    client = await createClient({ servers: server.url });
  });
  after(async () => {
    for (const w of workers) await w.stop().catch(() => {});
    await client?.close();
    await server?.stop();
  });

  test("a submit by name gets the type's attempts, timeout, retention and backoff; the handler gets its input as parsed", async () => {
    const job = await client.submit('flaky', { key: 'a', failures: 2 });
    const r = await job.wait({ timeoutMs: 20_000 });
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.result, { calls: 3 });
    assert.equal(r.maxAttempts, 4);
    assert.equal(r.timeoutMs, 20_000);
    assert.equal(r.retentionMs, 3_600_000);
    const gaps = r.attempts.slice(1).map((a, i) => a.assignedAt - r.attempts[i]!.endedAt!);
    assert.ok(gaps.every((g) => g >= 250), `each retry waited the fixed 300 ms backoff (${gaps.join(', ')} ms)`);
  });

  test('a NonRetryableError fails the job on its first attempt; result() rejects with the record', async () => {
    const job = await client.submit(refuse);
    await assert.rejects(job.result({ timeoutMs: 10_000 }), (err: unknown) => {
      assert.ok(err instanceof JobFailedError);
      assert.equal(err.record.attempts.length, 1);
      assert.equal(err.record.error, 'never');
      return true;
    });
  });

  test('a delayed job (delayMs or runAt) waits queued until it is due, then runs', async () => {
    const delayed = await client.submit('flaky', { key: 'late', failures: 0 }, { delayMs: 1_500 });
    const early = await delayed.get();
    assert.equal(early.state, 'queued');
    assert.ok(early.notBefore >= early.createdAt + 1_500, 'its notBefore is its submit plus the delay');
    const at = Date.now() + 1_000;
    const scheduled = await client.submit('flaky', { key: 'at', failures: 0 }, { runAt: at });
    const [a, b] = [await delayed.wait({ timeoutMs: 10_000 }), await scheduled.wait({ timeoutMs: 10_000 })];
    assert.equal(a.state, 'succeeded');
    assert.ok(a.attempts[0]!.assignedAt >= early.notBefore, 'not placed before it was due');
    assert.equal(b.state, 'succeeded');
    assert.ok(b.attempts[0]!.assignedAt >= at);
    await assert.rejects(client.submit('flaky', { key: 'x', failures: 0 }, { delayMs: 1, runAt: at }), /delayMs or runAt, not both/);
  });

  test('a failed job is retried as a new job <id>-r1 (once, however often asked); the list filters by type, newest first', async () => {
    const failed = await client.submit('flaky', { key: 'retry-me', failures: 1 }, { id: 'retry-me', maxAttempts: 1 });
    assert.equal((await failed.wait({ timeoutMs: 10_000 })).state, 'failed');
    const again = await client.retry<{ calls: number }>('retry-me');
    assert.equal(again.id, 'retry-me-r1');
    assert.deepEqual(await again.result({ timeoutMs: 10_000 }), { calls: 2 });
    assert.equal((await client.retry('retry-me')).created, false, 'asked again: the same new job');
    assert.equal((await failed.get()).state, 'failed', 'the failed record stays as it ended');
    await assert.rejects(client.retry('retry-me-r1'), /is succeeded: only a failed or cancelled job is retried/);
    const page = await client.list({ type: 'flaky', order: 'newest', limit: 2 });
    assert.deepEqual(page.jobs.map((j) => j.id), ['retry-me-r1', 'retry-me']);
    assert.ok(page.cursor, 'more flaky jobs on the next page');
    const rest = await client.list({ type: 'flaky', order: 'newest', cursor: page.cursor });
    assert.ok(rest.jobs.length > 0 && rest.jobs.every((j) => j.type === 'flaky' && j.createdAt <= page.jobs[1]!.createdAt));
  });

  test("a type's concurrency limit holds across workers: the rest wait queued, saying why", async () => {
    const w3 = await start('w3', [limited], 4);
    const jobs = await Promise.all(Array.from({ length: 6 }, () => client.submit(limited)));
    const waiting = await until('a job waits with the limit as its reason', async () => {
      for (const j of jobs) {
        const r = await j.get();
        if (r.state === 'queued' && r.pendingReason) return r.pendingReason;
      }
      return null;
    }, 5_000);
    assert.equal(waiting, "type 'limited' is at its concurrency limit (2 assigned or running)");
    const records = await Promise.all(jobs.map((j) => j.wait({ timeoutMs: 20_000 })));
    assert.ok(records.every((r) => r.state === 'succeeded'));
    // At no moment were more than 2 running: count overlaps of the attempts' run intervals.
    const edges = records.flatMap((r) => [[r.attempts[0]!.startedAt!, 1], [r.attempts[0]!.endedAt!, -1]] as const)
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    let most = 0;
    for (const [, d] of edges) most = Math.max(most, now += d);
    assert.equal(most, 2, 'two at a time, never more');
    assert.ok(new Set(records.map((r) => r.owner)).size >= 1);
    assert.equal((await client.status()).nodes.find((x) => x.id === 'w3')?.limits.limited, 2, 'the limit is in the advert');
    await w3.stop();
  });

  test('with OpenTelemetry in the application, each attempt is a span whose parent is the span that submitted it', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    otelContext.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    try {
      const checkout = trace.getTracer('test').startSpan('checkout');
      const job = await otelContext.with(
        trace.setSpan(otelContext.active(), checkout),
        () => client.submit('flaky', { key: 'traced', failures: 1 }),
      );
      assert.ok((await job.get()).trace?.traceparent.includes(checkout.spanContext().traceId), 'the record carries the trace');
      await job.result({ timeoutMs: 10_000 });
      checkout.end();
      const attempts = exporter.getFinishedSpans().filter((s) => s.name === 'shoal.job flaky' && s.attributes['shoal.job.id'] === job.id);
      assert.equal(attempts.length, 2, 'a span per attempt (the first failed)');
      for (const s of attempts) {
        assert.equal(s.spanContext().traceId, checkout.spanContext().traceId);
        assert.equal(s.parentSpanContext?.spanId, checkout.spanContext().spanId);
      }
      assert.deepEqual(attempts.map((s) => s.attributes['shoal.job.attempt']).sort(), [1, 2]);
      assert.deepEqual(attempts.map((s) => s.status.code).sort(), [SpanStatusCode.UNSET, SpanStatusCode.ERROR].sort());
    } finally {
      trace.disable();
      propagation.disable();
      otelContext.disable();
      await provider.shutdown();
    }
  });

  test('a worker adds no signal handlers; stopping it hands its running job to another, which resumes from the checkpoint', async () => {
    assert.equal(process.listenerCount('SIGTERM') + process.listenerCount('SIGINT'), signalsBefore);
    const job = await client.submit(steps, { n: 30 });
    await until('it checkpointed', async () => (await job.get()).checkpointedAt !== null, 10_000);
    await start('w2', [steps], 1);
    await w1.stop();
    assert.equal(await w1.stopped, 0);
    const r = await job.result({ timeoutMs: 20_000 });
    assert.ok(r.from > 0, `resumed from step ${r.from}, not from the start`);
    assert.equal((await job.get()).owner, 'w2');
  });
});
