// The API contract (api/contract.ts) against what implements it: the job
// machine's states and phases are the contract's, every record the machine
// makes validates against the record schema, and the nodes serve exactly the
// contract's endpoints.
import { scheduleEndpoints } from '../../node/schedules.ts';
import { realClock } from '../../base/time.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoints, jobPhases, jobRecordSchema, jobStates, terminalStates as contractTerminal } from '../../api/contract.ts';
import { applyJobEvent, jobMachine, newJobRecord, terminalStates } from '../../machines/job.machine.ts';
import { type ApiDeps, apiEndpoints } from '../../node/api.endpoints.ts';

describe('API contract', () => {
  test("the job machine's states, phases and final states are the contract's", () => {
    const states = jobMachine.config.states ?? {};
    const passing = Object.entries(states).filter(([, s]) => s.always).map(([k]) => k);
    assert.deepEqual(Object.keys(states).filter((k) => !passing.includes(k)).sort(), [...jobStates].sort());
    assert.deepEqual(Object.keys(states.running?.states ?? {}).sort(), [...jobPhases].sort());
    assert.deepEqual([...terminalStates].sort(), [...contractTerminal].sort());
  });

  test('every record the machine makes along a job validates against the record schema', () => {
    let r = newJobRecord({ id: 'j', type: 'noop', input: { a: 1 }, priority: 5, maxAttempts: 2, timeoutMs: 1000 }, 1);
    const check = () => assert.deepEqual(jobRecordSchema.parse(structuredClone(r)), r);
    check();
    for (
      const e of [
        { type: 'job.assign', node: 'n1', at: 2 },
        { type: 'job.start', node: 'n1', attempt: 1, resumedFrom: 0, at: 3, nodeEpoch: 7 },
        { type: 'job.progress', attempt: 1, progress: 0.5, at: 4, checkpoint: true },
        { type: 'job.fail', attempt: 1, error: 'x', retryable: true, backoffMs: 10, at: 5 },
        { type: 'job.assign', node: 'n2', at: 20 },
        { type: 'job.start', node: 'n2', attempt: 2, resumedFrom: 0.5, at: 21 },
        { type: 'job.succeed', attempt: 2, result: { ok: true }, at: 22 },
      ] as const
    ) {
      const next = applyJobEvent(r, e);
      assert.ok(next, e.type);
      r = next;
      check();
    }
    assert.equal(r.state, 'succeeded');
  });

  test("a node serves exactly the contract's endpoints", () => {
    // What node.process serves: the API endpoints and the schedules'.
    const served = {
      ...apiEndpoints({} as ApiDeps),
      ...scheduleEndpoints({ store: () => Promise.reject(new Error('unused')), clock: realClock }),
    };
    assert.deepEqual(Object.keys(served).sort(), Object.keys(endpoints).sort());
    for (const [name, ep] of Object.entries(served)) assert.equal(ep.schema, endpoints[name as keyof typeof endpoints].request, name);
  });
});
