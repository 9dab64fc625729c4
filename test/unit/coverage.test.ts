// Every state and every transition of every machine is exercised. The node,
// coordinator and lease machines are run by the simulation (the real wiring,
// faults included) and, for the paths its faults do not take, by directed
// scenarios; the job machine through each path a record can take; every
// microstep they take is recorded and compared with the machines' graphs
// (xstate/graph). A state or transition nobody reaches fails the test, unless
// it is on the exemption list below with the reason it cannot be reached.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type AnyTransitionDefinition, createActor, type InspectionEvent, SimulatedClock, type StateValue } from 'xstate';
import { defaultShape, simProperty } from '../../chaos/sim/suite.ts';
import { type JobEvent, jobMachine, newJobRecord, orphanLimit, recordOf, snapshotOf } from '../../machines/job.machine.ts';
import type { JobRecord } from '../../api/contract.ts';
import { coordinatorHarness, leaseHarness, nodeHarness, other, timing } from './machine.harness.ts';
import { edgeIdOf, machineGraph, machines, stateIds, stateIdsOfValue } from '../../machines/graph.ts';

/** Reached by no test, on purpose; each with why. */
const exempt: Record<string, string> = {
  // A running actor in a final state takes no event, so no microstep shows these. They matter for job
  // records, which `applyJobEvent` gives events in any state: a cancel must not rewrite a finished job
  // (job.machine.test.ts, 'cancel ends any live job; terminal jobs ignore it').
  'job.succeeded|job.cancel||': 'final-state guard for records',
  'job.failed|job.cancel||': 'final-state guard for records',
  'job.cancelled|job.cancel||': 'final-state guard for records',
};

type Seen = { states: Set<string>; edges: Set<string> };

function collector(seen: Seen) {
  return (ev: InspectionEvent) => {
    if (ev.type !== '@xstate.microstep' && ev.type !== '@xstate.snapshot') return;
    const snap = ev.snapshot as { machine?: { id: string }; value?: StateValue };
    if (!snap.machine || snap.value === undefined) return;
    for (const id of stateIdsOfValue(snap.machine.id, snap.value)) seen.states.add(id);
    if (ev.type === '@xstate.microstep') { for (const t of ev._transitions as AnyTransitionDefinition[]) seen.edges.add(edgeIdOf(t)); }
  };
}

const settle = () => new Promise((r) => setTimeout(r, 0));
const leaseReport = (type: string, extra: Record<string, unknown> = {}) =>
  ({ type, key: 'leader', epoch: 5, validUntil: 1e12, ...extra }) as never;

/** The job machine through each path a record can take, the event's attempt taken from the record as it is. */
function exerciseJobs(inspect: (ev: InspectionEvent) => void) {
  type Step = (r: JobRecord) => JobEvent;
  const at = 10;
  const assign: Step = () => ({ type: 'job.assign', node: 'n1', at: 1e9 });
  const start: Step = (r) => ({ type: 'job.start', node: 'n1', attempt: r.attempt, resumedFrom: 0, at });
  const cur = (type: 'job.orphan' | 'job.unstarted' | 'job.preempt'): Step => (r) => ({ type, attempt: r.attempt, at });
  const fail: Step = (r) => ({ type: 'job.fail', attempt: r.attempt, error: 'e', retryable: true, backoffMs: 1, at });
  const timeout: Step = (r) => ({ type: 'job.timeout', attempt: r.attempt, backoffMs: 1, at });
  const phase = (p: 'computing' | 'ioWait' | 'checkpointing'): Step => (r) => ({ type: 'job.phase', attempt: r.attempt, phase: p, at });
  const paths: Step[][] = [
    [
      assign,
      start,
      phase('ioWait'),
      phase('checkpointing'),
      phase('computing'),
      (r) => ({ type: 'job.progress', attempt: r.attempt, progress: 0.5, at }),
      (r) => ({ type: 'job.succeed', attempt: r.attempt, result: 1, at }),
    ],
    [assign, start, fail, assign, start, fail],
    [assign, start, timeout, assign, start, timeout],
    [assign, start, cur('job.orphan'), assign, start, cur('job.preempt'), assign, cur('job.unstarted'), assign, cur('job.orphan')],
    // A poison job: its running attempts end orphaned until the limit.
    [...Array.from({ length: orphanLimit }, () => [assign, start, cur('job.orphan')]).flat()],
    [() => ({ type: 'job.reject', error: 'unknown type', at })],
    [() => ({ type: 'job.pending', reason: 'no live node has 1 GPU', at }), () => ({ type: 'job.pending', reason: null, at }), assign],
    [assign, start, () => ({ type: 'job.cancel', at })],
  ];
  for (const path of paths) {
    let record = newJobRecord({ id: 'j', type: 't', input: null, priority: 5, maxAttempts: 2, timeoutMs: 1000 }, 0);
    for (const step of path) {
      const actor = createActor(jobMachine, { snapshot: snapshotOf(record), inspect, input: undefined as never }).start();
      actor.send(step(record));
      record = recordOf(actor.getSnapshot());
      actor.stop();
    }
  }
}

/** The node, coordinator and lease machines through the paths the simulation's faults do not take (start-up failures, races at shutdown). */
async function exerciseEdges(inspect: (ev: InspectionEvent) => void) {
  const started: Array<{ stop(): unknown }> = [];
  const run = <T extends { actor: { start(): unknown; stop(): unknown } }>(h: T): T => {
    started.push(h.actor);
    h.actor.start();
    return h;
  };
  const acquired = { type: 'lease.acquired', key: 'node.n1', epoch: 3, validUntil: 1e12 } as const;
  // Node: bootstrap fails; drained while starting; a duplicate id; disconnects while joining; drains repeated; a hand-back that fails.
  run(nodeHarness({ bootstrapFails: true, inspect }));
  await settle();
  run(nodeHarness({ inspect })).actor.send({ type: 'drain' });
  const dup = run(nodeHarness({ inspect }));
  await settle();
  dup.actor.send({ type: 'nats.disconnected' });
  dup.actor.send({ type: 'lease.standby', key: 'node.n1', holder: { id: 'n1', instance: 'other' } });
  // Ready before the link was confirmed: the link's return starts what was parked.
  const early = run(nodeHarness({ inspect }));
  await settle();
  early.actor.send(acquired);
  early.actor.send({ type: 'nats.reconnected' });
  for (const handBackFails of [false, true]) {
    const n = run(nodeHarness({ inspect, handBackFails }));
    await settle();
    n.actor.send(acquired);
    n.actor.send({ type: 'drain' });
    n.actor.send({ type: 'drain' });
    await settle();
    n.actor.send({ type: 'drain' });
    if (handBackFails) n.clock.increment(timing.ttlMs);
    else n.actor.send({ type: 'lease.lost', key: 'node.n1', epoch: 3, reason: 'x' });
  }
  // A drain whose hand-back hangs: stopped at the deadline, or by a lease loss meanwhile (fenced, no re-join).
  for (const lost of [false, true]) {
    const n = run(nodeHarness({ inspect, handBackHangs: true }));
    await settle();
    n.actor.send(acquired);
    n.actor.send({ type: 'drain' });
    if (lost) n.actor.send({ type: 'lease.lost', key: 'node.n1', epoch: 3, reason: 'x' });
    else n.clock.increment(timing.drainDeadlineMs);
  }
  // Coordinator: a new term while leading; losing leadership every way; a suspension that ends in a confirmed renewal; a release that times out.
  for (const next of ['lease.acquired', 'lease.released', 'lease.standby', 'lease.acquiring']) {
    const c = run(coordinatorHarness({ inspect }));
    c.actor.send({ type: 'start' });
    c.actor.send(leaseReport('lease.acquired'));
    c.actor.send(leaseReport(next, { holder: other, epoch: 6 }));
  }
  const suspended = run(coordinatorHarness({ inspect }));
  suspended.actor.send({ type: 'start' });
  suspended.actor.send(leaseReport('lease.acquired'));
  suspended.actor.send({ type: 'connection.lost' });
  suspended.actor.send({ type: 'connection.lost' });
  suspended.actor.send({ type: 'connection.restored' });
  suspended.actor.send(leaseReport('lease.renewed'));
  const clock = new SimulatedClock();
  const stepping = run(coordinatorHarness({ inspect, clock }));
  stepping.actor.send({ type: 'start' });
  stepping.actor.send({ type: 'stop' });
  clock.increment(timing.ttlMs);
  // Lease: an acquire and a renewal that fail with an error (not an outcome).
  const throwing = () => {
    throw new Error('no answer');
  };
  run(leaseHarness({ acquire: throwing, inspect }));
  await settle();
  const r = run(
    leaseHarness({ acquire: (_req, now) => ({ type: 'acquired', revision: 1, sentAt: now, receivedAt: now }), renew: throwing, inspect }),
  );
  await settle();
  await r.advance(timing.renewIntervalMs + 5);
  // Lease: a renewal that finds the key moved on (lost), then the poll that tries again.
  const moved = run(
    leaseHarness({
      acquire: (_req, now) => ({ type: 'acquired', revision: 1, sentAt: now, receivedAt: now }),
      renew: () => ({ type: 'conflict', message: 'the key moved on' }),
      inspect,
    }),
  );
  await settle();
  await moved.advance(timing.renewIntervalMs + 5);
  await moved.advance(timing.pollIntervalMs + 5);
  // Lease: an acquire whose answer came after the validity it grants (a paused process): stand by instead.
  run(leaseHarness({ acquire: (_req, now) => ({ type: 'acquired', revision: 1, sentAt: now - timing.ttlMs, receivedAt: now }), inspect }));
  await settle();
  started.forEach((a) => a.stop());
}

describe('state and transition coverage', () => {
  test('every state and transition of node, coordinator, lease and job is reached (exemptions listed)', async () => {
    const seen: Seen = { states: new Set(), edges: new Set() };
    const inspect = collector(seen);
    await fc.assert(simProperty({ ...defaultShape, inspect }), { numRuns: 300, seed: 20261201 });
    exerciseJobs(inspect);
    await exerciseEdges(inspect);
    const missing: string[] = [];
    let total = 0;
    for (const m of Object.values(machines)) {
      const g = machineGraph(m);
      for (const id of stateIds(g.root)) {
        total++;
        if (!seen.states.has(id) && !exempt[id]) missing.push(`state ${id}`);
      }
      for (const e of g.edges) {
        total++;
        if (!seen.edges.has(e.id) && !exempt[e.id]) missing.push(`transition ${e.id}`);
      }
    }
    const exempted = Object.keys(exempt).length;
    console.log(
      `coverage: ${total - missing.length - exempted} of ${total} states and transitions reached by the tests, ${exempted} exempt (listed)`,
    );
    assert.deepEqual(missing, []);
  });
});
