// The history checker bites: planted violations are each reported, a clean history passes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory } from '../../chaos/checker.ts';
import { newJobRecord, type JobRecord } from '../../machines/job.machine.ts';
import type { Transition } from '../../streams/events.ts';

let wall = 1_000;
let seq = 0;
function ev(kind: string, actor: string, node: string, from: string | null, to: string, event: string, epoch: number | null, data?: Record<string, unknown>): Transition {
  wall += 10;
  return { kind, actor, node, instance: `${node}-i`, pid: 1, from, to, event, epoch, wall, mono: wall, seq: ++seq, data };
}

/** A clean life of job j1: attempt 1 on n1 dies at 60 %, attempt 2 on n2 resumes and succeeds. */
function cleanJob(): Transition[] {
  return [
    ev('coordinator', 'n1', 'n1', 'active.candidate', 'active.leader.recovering', 'lease.acquired', 5),
    ev('job', 'j1', 'n1', null, 'queued', 'job.submit', 0, { input: { limit: 100 } }),
    ev('job', 'j1', 'n1', 'queued', 'assigned', 'job.assign', 1),
    ev('job', 'j1', 'n1', 'assigned', 'running.computing', 'job.start', 1, { resumedFrom: 0 }),
    ev('job', 'j1', 'n1', 'running', 'running', 'job.checkpoint', 1, { progress: 0.6 }),
    ev('coordinator', 'n2', 'n2', 'active.candidate', 'active.leader.recovering', 'lease.acquired', 9),
    ev('job', 'j1', 'n2', 'running.computing', 'queued', 'job.orphan', 1),
    ev('job', 'j1', 'n2', 'queued', 'assigned', 'job.assign', 2),
    ev('job', 'j1', 'n2', 'assigned', 'running.computing', 'job.start', 2, { resumedFrom: 0.6 }),
    ev('job', 'j1', 'n2', 'running.computing', 'succeeded', 'job.succeed', 2, { result: { count: 25 } }),
  ];
}

const record = (over: Partial<JobRecord> = {}): JobRecord => ({
  ...newJobRecord({ id: 'j1', type: 'primes', input: { limit: 100 }, priority: 5, maxAttempts: 3, timeoutMs: 1000 }, 0),
  state: 'succeeded', result: { count: 25 }, ...over,
});
const expected = (type: string, input: unknown) => (type === 'primes' ? { count: (input as { limit: number }).limit === 100 ? 25 : -1 } : undefined);
const invariants = (h: Transition[], records = [record()]) => checkHistory(h, { records, expected, expectAllTerminal: true }).map((v) => v.invariant);

describe('history checker', () => {
  test('a clean history with a migration passes every invariant', () => {
    assert.deepEqual(invariants(cleanJob()), []);
  });

  test('double completion is reported', () => {
    const h = cleanJob();
    h.push(ev('job', 'j1', 'n1', 'running.computing', 'succeeded', 'job.succeed', 1, { result: { count: 25 } }));
    assert.ok(invariants(h).includes('one-terminal-state'));
  });

  test('a lost checkpoint (resumed below what was committed) is reported', () => {
    const h = cleanJob().map((t) => (t.event === 'job.start' && t.epoch === 2 ? { ...t, data: { resumedFrom: 0.2 } } : t));
    assert.deepEqual(invariants(h), ['resume-from-checkpoint']);
  });

  test('two leaders in one epoch are reported', () => {
    const h = cleanJob();
    h.push(ev('coordinator', 'n3', 'n3', 'active.candidate', 'active.leader.recovering', 'lease.acquired', 9));
    assert.ok(invariants(h).includes('one-leader-per-epoch'));
  });

  test('a stale leader acting after a newer epoch began is reported', () => {
    const h = cleanJob();
    h.push(ev('coordinator', 'n1', 'n1', 'active.leader.placing', 'active.leader.recovering', 'xstate.after', 5));
    assert.ok(invariants(h).includes('stale-leader-acted'));
  });

  test('an unfenced write from an old attempt is reported', () => {
    const h = cleanJob();
    h.splice(h.length - 1, 0, ev('job', 'j1', 'n1', 'running', 'running', 'job.checkpoint', 1, { progress: 0.9 }));
    assert.ok(invariants(h).includes('fenced-writes'));
  });

  test('an overwritten or wrong result, and a job left unfinished, are reported', () => {
    assert.deepEqual(invariants(cleanJob(), [record({ result: { count: 26 } })]).sort(), ['result-correct', 'result-kept']);
    assert.deepEqual(invariants(cleanJob(), [record({ state: 'running', result: null })]), ['not-terminal']);
  });
});
