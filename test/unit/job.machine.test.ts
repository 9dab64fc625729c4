// The job record lifecycle as pure transitions: fences, retries, recovery,
// and a property over random event sequences.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { getNextSnapshot, initialTransition } from 'xstate';
import {
  applyJobEvent,
  attemptsKept,
  isTerminal,
  type JobEvent,
  jobMachine,
  newJobRecord,
  orphanLimit,
  recordOf,
  snapshotOf,
} from '../../machines/job.machine.ts';
import type { JobRecord } from '../../api/contract.ts';
import { outcomeEvent, requeueDecision } from '../../machines/job.rules.ts';

const spec = { id: 'j1', type: 'primes', input: { limit: 100 }, priority: 5, maxAttempts: 2, timeoutMs: 1000 };
const at = 1_000;

function apply(r: JobRecord, ...events: JobEvent[]): JobRecord {
  for (const e of events) {
    const next = applyJobEvent(r, e);
    assert.ok(next, `event ${e.type} accepted in ${r.state}`);
    r = next;
  }
  return r;
}

describe('job machine', () => {
  test('queued → assigned → running → succeeded, with the attempt history', () => {
    let r = newJobRecord(spec, at);
    assert.equal(r.state, 'queued');
    assert.equal(r.attempt, 0);
    r = apply(r, { type: 'job.assign', node: 'n1', at: 2 }, { type: 'job.start', node: 'n1', attempt: 1, resumedFrom: 0, at: 3 });
    assert.equal(r.state, 'running');
    assert.equal(r.phase, 'computing');
    r = apply(r, { type: 'job.phase', attempt: 1, phase: 'ioWait', at: 4 }, { type: 'job.progress', attempt: 1, progress: 0.5, at: 5 });
    assert.equal(r.phase, 'ioWait');
    assert.equal(r.progress, 0.5);
    r = apply(r, { type: 'job.succeed', attempt: 1, result: { count: 25 }, at: 6 });
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.result, { count: 25 });
    assert.deepEqual(r.attempts, [{
      attempt: 1,
      node: 'n1',
      assignedAt: 2,
      startedAt: 3,
      endedAt: 6,
      resumedFrom: 0,
      outcome: 'succeeded',
    }]);
  });

  test('a job whose running attempts keep ending orphaned fails as a poison job at orphanLimit; unstarted orphans do not count', () => {
    let r = newJobRecord(spec, at);
    let t = at;
    // Orphaned before it started (its node died while it was only assigned): not the job's fault.
    r = apply(r, { type: 'job.assign', node: 'n0', at: ++t }, { type: 'job.orphan', attempt: 1, at: ++t });
    assert.equal(r.orphans, 0);
    for (let k = 1; k < orphanLimit; k++) {
      const attempt = r.attempt + 1;
      r = apply(r, { type: 'job.assign', node: `n${k}`, at: ++t }, { type: 'job.start', node: `n${k}`, attempt, resumedFrom: 0, at: ++t });
      r = apply(r, { type: 'job.orphan', attempt, at: ++t });
      assert.equal(r.state, 'queued', `orphan ${k} requeues it`);
      assert.equal(r.orphans, k);
    }
    const attempt = r.attempt + 1;
    r = apply(r, { type: 'job.assign', node: 'nx', at: ++t }, { type: 'job.start', node: 'nx', attempt, resumedFrom: 0, at: ++t });
    r = apply(r, { type: 'job.orphan', attempt, at: ++t });
    assert.equal(r.state, 'failed');
    assert.equal(r.owner, null);
    assert.match(r.error ?? '', new RegExp(`poison job: ${orphanLimit} attempts ended with their node gone .*last on nx`));
    assert.equal(r.attempts.at(-1)!.outcome, 'orphaned');
    assert.equal(r.failures, 0, 'orphans are not failures: maxAttempts alone would never have stopped it');
  });

  test(`a record keeps its last ${attemptsKept} attempts`, () => {
    let r = newJobRecord({ ...spec, maxAttempts: 100 }, at);
    for (let k = 1; k <= attemptsKept + 5; k++) {
      r = apply(r, { type: 'job.assign', node: 'n1', at: at + k }, { type: 'job.unstarted', attempt: k, at: at + k });
    }
    assert.equal(r.attempts.length, attemptsKept);
    assert.deepEqual(r.attempts.map((a) => a.attempt), Array.from({ length: attemptsKept }, (_, i) => i + 6));
    r = apply(r, { type: 'job.assign', node: 'n2', at: at + 99 });
    assert.equal(r.attempts.length, attemptsKept);
    assert.equal(r.attempts.at(-1)!.attempt, attemptsKept + 6);
  });

  test('a stale attempt is fenced: its start, progress and result are refused', () => {
    let r = apply(newJobRecord(spec, at), { type: 'job.assign', node: 'n1', at: 2 }, {
      type: 'job.start',
      node: 'n1',
      attempt: 1,
      resumedFrom: 0,
      at: 3,
    });
    r = apply(r, { type: 'job.orphan', attempt: 1, at: 4 });
    assert.equal(r.state, 'queued');
    assert.equal(r.owner, null);
    r = apply(r, { type: 'job.assign', node: 'n2', at: 5 });
    assert.equal(r.attempt, 2);
    assert.equal(applyJobEvent(r, { type: 'job.start', node: 'n1', attempt: 1, resumedFrom: 0, at: 6 }), null);
    r = apply(r, { type: 'job.start', node: 'n2', attempt: 2, resumedFrom: 0.4, at: 6 });
    assert.equal(applyJobEvent(r, { type: 'job.succeed', attempt: 1, result: 'zombie', at: 7 }), null);
    assert.equal(applyJobEvent(r, { type: 'job.progress', attempt: 1, progress: 0.9, at: 7 }), null);
    r = apply(r, { type: 'job.succeed', attempt: 2, result: 'real', at: 8 });
    assert.equal(r.result, 'real');
    assert.equal(r.attempts[0]!.outcome, 'orphaned');
    assert.equal(r.attempts[1]!.resumedFrom, 0.4);
  });

  test('failures retry until maxAttempts, then fail; non-retryable errors fail at once', () => {
    const run = (r: JobRecord, node: string) =>
      apply(r, { type: 'job.assign', node, at: r.notBefore }, {
        type: 'job.start',
        node,
        attempt: r.attempt + 1,
        resumedFrom: 0,
        at: r.notBefore,
      });
    let r = run(newJobRecord(spec, at), 'n1');
    r = apply(r, { type: 'job.fail', attempt: 1, error: 'boom', retryable: true, backoffMs: 500, at: 10 });
    assert.equal(r.state, 'queued');
    assert.equal(r.notBefore, 510);
    assert.equal(applyJobEvent(r, { type: 'job.assign', node: 'n2', at: 509 }), null, 'not placed during its backoff');
    r = run(r, 'n2');
    r = apply(r, { type: 'job.timeout', attempt: 2, backoffMs: 500, at: 20 });
    assert.equal(r.state, 'failed');
    assert.match(r.error ?? '', /timed out after 1000 ms/);
    const once = apply(run(newJobRecord(spec, at), 'n1'), {
      type: 'job.fail',
      attempt: 1,
      error: 'unknown job type',
      retryable: false,
      backoffMs: 0,
      at: 9,
    });
    assert.equal(once.state, 'failed');
  });

  test('cancel ends any live job; terminal jobs ignore it', () => {
    const r = apply(newJobRecord(spec, at), { type: 'job.cancel', at: 2 });
    assert.equal(r.state, 'cancelled');
    assert.equal(applyJobEvent(r, { type: 'job.cancel', at: 3 }), null);
    assert.equal(applyJobEvent(r, { type: 'job.assign', node: 'n1', at: 3 }), null);
  });

  const node = fc.constantFrom('n1', 'n2');
  const att = fc.integer({ min: 0, max: 4 });
  const event: fc.Arbitrary<JobEvent> = fc.oneof(
    node.map((n) => ({ type: 'job.assign' as const, node: n, at: 1 })),
    fc.tuple(node, att).map(([n, a]) => ({ type: 'job.start' as const, node: n, attempt: a, resumedFrom: 0, at: 1 })),
    fc.tuple(att, fc.constantFrom('computing', 'ioWait', 'checkpointing') as fc.Arbitrary<'computing'>).map(([a, phase]) => ({
      type: 'job.phase' as const,
      attempt: a,
      phase,
      at: 1,
    })),
    fc.tuple(att, fc.constantFrom(0, 0.5)).map(([a, p]) => ({ type: 'job.progress' as const, attempt: a, progress: p, at: 1 })),
    att.map((a) => ({ type: 'job.succeed' as const, attempt: a, result: a, at: 1 })),
    att.map((a) => ({ type: 'job.fail' as const, attempt: a, error: 'x', retryable: true, backoffMs: 1, at: 1 })),
    att.map((a) => ({ type: 'job.orphan' as const, attempt: a, at: 1 })),
    att.map((a) => ({ type: 'job.preempt' as const, attempt: a, at: 1 })),
    att.map((a) => ({ type: 'job.unstarted' as const, attempt: a, at: 1 })),
    fc.constant({ type: 'job.cancel' as const, at: 1 }),
  );

  test("the fast pure step (one shared actor scope) equals XState's own getNextSnapshot on random histories", () => {
    // Sharing the scope is safe only while every action is an assign (resolved inside the step, never executed by the scope).
    for (const [name, action] of Object.entries(jobMachine.implementations.actions)) {
      assert.equal((action as { type?: string }).type, 'xstate.assign', `action ${name} is an assign`);
    }
    const reference = (r: JobRecord, e: JobEvent) => {
      const next = recordOf(getNextSnapshot(jobMachine, snapshotOf(r), e));
      return JSON.stringify(next) === JSON.stringify(r) ? null : next;
    };
    // Steps taken that change nothing (the same progress or phase again) are null in both.
    const running = apply(newJobRecord(spec, at), { type: 'job.assign', node: 'n1', at: 2 }, {
      type: 'job.start',
      node: 'n1',
      attempt: 1,
      resumedFrom: 0,
      at: 3,
    }, { type: 'job.progress', attempt: 1, progress: 0.5, at: 4 });
    for (
      const e of [{ type: 'job.progress', attempt: 1, progress: 0.5, at: 4 }, {
        type: 'job.phase',
        attempt: 1,
        phase: 'computing',
        at: 4,
      }] as const
    ) {
      assert.equal(reference(running, e), null);
      assert.equal(applyJobEvent(running, e), null);
    }
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), (events) => {
        let r = newJobRecord({ ...spec, maxAttempts: 3 }, at);
        assert.deepEqual(r, recordOf(initialTransition(jobMachine, { ...spec, maxAttempts: 3, at })[0]));
        for (const e of events) {
          const next = applyJobEvent(r, e);
          assert.deepEqual(next, reference(r, e), `${e.type} in ${r.state}`);
          if (next) r = next;
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('property: attempts only grow, a terminal job never changes, and only the current attempt completes', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), (events) => {
        let r = newJobRecord({ ...spec, maxAttempts: 3 }, at);
        for (const e of events) {
          const next = applyJobEvent(r, e);
          if (!next) continue;
          assert.ok(!isTerminal(r), `terminal ${r.state} changed by ${e.type}`);
          assert.ok(next.attempt >= r.attempt);
          if (next.state === 'succeeded') assert.equal(next.result, r.attempt, 'the result comes from the current attempt');
          if (next.state === 'running' || next.state === 'assigned') assert.ok(next.owner);
          if (next.state === 'queued') assert.equal(next.owner, null);
          r = next;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('job rules', () => {
  const assigned = (node: string, assignedAt: number) => apply(newJobRecord(spec, at), { type: 'job.assign', node, at: assignedAt });
  const running = (node: string, nodeEpoch: number) =>
    apply(assigned(node, 2), { type: 'job.start', node, attempt: 1, resumedFrom: 0, at: 3, nodeEpoch });

  test('recovery: an owner without a lease → orphaned; the record accepts it and the attempt ends orphaned', () => {
    const r = running('n1', 7);
    const q = requeueDecision(r, new Map([['n2', 9]]), 100, 5_000);
    assert.equal(q?.event.type, 'job.orphan');
    assert.match(q!.why, /n1 is gone/);
    const next = apply(r, q!.event);
    assert.equal(next.state, 'queued');
    assert.equal(next.attempts[0]!.outcome, 'orphaned');
  });

  test('recovery: an owner that re-joined under another lease term → orphaned; the same term → left alone', () => {
    assert.match(requeueDecision(running('n1', 7), new Map([['n1', 8]]), 100, 5_000)!.why, /lease term \(epoch 7\)/);
    assert.equal(requeueDecision(running('n1', 7), new Map([['n1', 7]]), 100, 5_000), null);
  });

  test('recovery: an assignment not started within the start timeout → unstarted; before it, left alone', () => {
    const live = new Map([['n1', 7]]);
    assert.equal(requeueDecision(assigned('n1', 1_000), live, 6_000, 5_000), null);
    const q = requeueDecision(assigned('n1', 1_000), live, 6_001, 5_000);
    assert.equal(q?.event.type, 'job.unstarted');
    assert.equal(apply(assigned('n1', 1_000), q!.event).attempts[0]!.outcome, 'unstarted');
  });

  test('recovery: queued and terminal jobs are never requeued', () => {
    const live = new Map<string, number>();
    assert.equal(requeueDecision(newJobRecord(spec, at), live, 1e9, 1), null);
    const done = apply(running('n1', 7), { type: 'job.succeed', attempt: 1, result: 1, at: 4 });
    assert.equal(requeueDecision(done, live, 1e9, 1), null);
  });

  test('outcome: a stop wins over what the handler returned (a preempted one that finished keeps its result); fenced and cancelled write nothing', () => {
    const ok = { ok: true as const, result: 42 };
    const bad = { ok: false as const, error: 'boom', retryable: true, fenced: false };
    assert.equal(outcomeEvent(2, 'fenced', ok, 100, 5), null);
    assert.equal(outcomeEvent(2, 'cancelled', ok, 100, 5), null);
    assert.deepEqual(outcomeEvent(2, 'preempted', bad, 100, 5), { type: 'job.preempt', attempt: 2, at: 5 });
    assert.deepEqual(outcomeEvent(2, 'preempted', ok, 100, 5), { type: 'job.succeed', attempt: 2, result: 42, at: 5 });
    assert.deepEqual(outcomeEvent(2, 'timeout', ok, 100, 5), { type: 'job.timeout', attempt: 2, backoffMs: 100, at: 5 });
    assert.deepEqual(outcomeEvent(2, null, ok, 100, 5), { type: 'job.succeed', attempt: 2, result: 42, at: 5 });
    assert.deepEqual(outcomeEvent(2, null, bad, 100, 5), {
      type: 'job.fail',
      attempt: 2,
      error: 'boom',
      retryable: true,
      backoffMs: 100,
      at: 5,
    });
    // A handler that hit a fence of its own: its attempt fails (retryably); the machine refuses it if the record moved on.
    const fenced = outcomeEvent(2, null, { ...bad, fenced: true }, 100, 5);
    assert.deepEqual(fenced, { type: 'job.fail', attempt: 2, error: 'fenced: boom', retryable: true, backoffMs: 100, at: 5 });
    const mine = running('n1', 7);
    assert.equal(apply(mine, { ...fenced!, attempt: 1 }).state, 'queued', 'still ours: back to the queue, not running forever');
    // Refused by a cancel's fence: the owner writes the cancel (never a failure that costs an attempt).
    const cancelled = outcomeEvent(1, null, { ...bad, fenced: true, cancelled: true }, 100, 5);
    assert.deepEqual(cancelled, { type: 'job.cancel', at: 5 });
    assert.equal(apply(mine, cancelled!).state, 'cancelled');
    const moved = apply(mine, { type: 'job.orphan', attempt: 1, at: 6 }, { type: 'job.assign', node: 'n2', at: 7 });
    assert.equal(applyJobEvent(moved, { ...fenced!, attempt: 1 }), null, "someone else's now: refused");
  });

  test('outcome: a non-retryable failure fails the job at once; a retryable one goes back to the queue with its backoff', () => {
    const r = running('n1', 7);
    const fail = (retryable: boolean) => apply(r, outcomeEvent(1, null, { ok: false, error: 'e', retryable, fenced: false }, 400, 10)!);
    assert.equal(fail(false).state, 'failed');
    const retry = fail(true);
    assert.equal(retry.state, 'queued');
    assert.equal(retry.notBefore, 410);
  });
});
