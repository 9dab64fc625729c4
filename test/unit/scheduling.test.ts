// Priorities, phases and resources as pure pieces: the job record's pending
// reason and preemption count, the victim choice and its anti-thrash rule,
// requirement matching and its reasons, awards within memory and GPUs, and a
// node's slot book (compute slots, the I/O limit, yields).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyJobEvent, newJobRecord } from '../../machines/job.machine.ts';
import type { JobRecord } from '../../api/contract.ts';
import { auctionPolicy, greedyAward, type NodeBid } from '../../policies/placement.ts';
import { chooseVictim, defaultPreemption, preemptible } from '../../policies/preemption.ts';
import { describeRequirements, pendingReason, satisfies } from '../../policies/requirements.ts';
import { heuristicScorer } from '../../policies/scorer.ts';
import { Slots } from '../../node/slots.ts';

const spec = { id: 'j', type: 'primes', input: null, priority: 5, maxAttempts: 3, timeoutMs: 1000 };

/** A job running on `node` since `startedAt`, with priority `priority`. */
function running(id: string, priority: number, node: string, startedAt: number, extra: Partial<JobRecord> = {}): JobRecord {
  let r = newJobRecord({ ...spec, id, priority }, 0);
  r = applyJobEvent(r, { type: 'job.assign', node, at: startedAt })!;
  r = applyJobEvent(r, { type: 'job.start', node, attempt: 1, resumedFrom: 0, at: startedAt })!;
  return { ...r, ...extra };
}

describe('job record: pending reason and preemptions', () => {
  test('the leader sets and clears why a queued job waits; an assignment clears it; the same reason twice writes nothing', () => {
    let r = newJobRecord({ ...spec, requires: { gpu: 1 } }, 0);
    assert.deepEqual(r.requires, { gpu: 1 });
    r = applyJobEvent(r, { type: 'job.pending', reason: 'no live node has 1 GPU', at: 5 })!;
    assert.equal(r.pendingReason, 'no live node has 1 GPU');
    assert.equal(r.pendingSince, 5);
    assert.equal(applyJobEvent(r, { type: 'job.pending', reason: 'no live node has 1 GPU', at: 9 }), null);
    const other = applyJobEvent(r, { type: 'job.pending', reason: 'no live node has 2 GPUs', at: 9 })!;
    assert.equal(other.pendingSince, 5, 'still waiting since the first reason');
    const assigned = applyJobEvent(r, { type: 'job.assign', node: 'n1', at: 10 })!;
    assert.equal(assigned.pendingReason, null);
    assert.equal(assigned.pendingSince, null);
    const cleared = applyJobEvent(r, { type: 'job.pending', reason: null, at: 11 })!;
    assert.equal(cleared.pendingReason, null);
    assert.equal(applyJobEvent(running('x', 5, 'n1', 1), { type: 'job.pending', reason: 'x', at: 2 }), null, 'only a queued job waits');
  });

  test('a preempted attempt counts, with its time; a checkpoint-backed progress write stamps checkpointedAt', () => {
    let r = running('v', 1, 'n1', 10);
    r = applyJobEvent(r, { type: 'job.progress', attempt: 1, progress: 0.3, at: 20, checkpoint: true })!;
    assert.equal(r.checkpointedAt, 20);
    r = applyJobEvent(r, { type: 'job.preempt', attempt: 1, at: 30 })!;
    assert.equal(r.state, 'queued');
    assert.equal(r.preemptions, 1);
    assert.equal(r.preemptedAt, 30);
    assert.equal(r.failures, 0, 'a preemption is not a failure');
    assert.equal(r.attempts[0]!.outcome, 'preempted');
  });
});

describe('preemption policy', () => {
  const rules = defaultPreemption;
  const yes = () => true;

  test('the victim: strictly lower priority, lowest first, then the least work since its last checkpoint', () => {
    const now = 10_000;
    const a = running('a', 3, 'n1', 1_000);
    const b = running('b', 1, 'n1', 2_000);
    const c = running('c', 1, 'n2', 1_000, { checkpointedAt: 9_500 });
    const d = running('d', 7, 'n2', 1_000);
    assert.equal(chooseVictim({ priority: 9 }, [a, b, c, d], now, rules, yes)?.id, 'c');
    assert.equal(chooseVictim({ priority: 2 }, [a, b, c, d], now, rules, yes)?.id, 'c');
    assert.equal(chooseVictim({ priority: 1 }, [a, b, c, d], now, rules, yes), null, 'equal priority never preempts');
    assert.equal(chooseVictim({ priority: 9 }, [a, b, c, d], now, rules, (v) => v.owner === 'n1')?.id, 'b', 'only where it fits');
    assert.equal(chooseVictim({ priority: 9 }, [a, b], now, { ...rules, enabled: false }, yes)?.id, 'b', 'the loop checks enabled');
  });

  test('anti-thrash: after maxPreemptions a job is spared until the cooldown has passed since its last preemption', () => {
    const tired = running('t', 1, 'n1', 0, { preemptions: rules.maxPreemptions, preemptedAt: 1_000 });
    assert.equal(preemptible(tired, 1_000 + rules.cooldownMs - 1, rules), false);
    assert.equal(preemptible(tired, 1_000 + rules.cooldownMs, rules), true);
    assert.equal(preemptible({ ...tired, preemptions: rules.maxPreemptions - 1 }, 1_001, rules), true);
  });

  test('property: a victim always has strictly lower priority than the job it makes room for', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ p: fc.integer({ min: 0, max: 9 }), s: fc.integer({ min: 0, max: 5_000 }) }), { maxLength: 12 }),
      fc.integer({ min: 0, max: 9 }),
      (jobs, urgent) => {
        const rs = jobs.map((j, i) => running(`r${i}`, j.p, 'n1', j.s));
        const v = chooseVictim({ priority: urgent }, rs, 6_000, rules, yes);
        const lower = rs.filter((r) => r.priority < urgent);
        if (lower.length === 0) return v === null;
        return v !== null && v.priority === Math.min(...lower.map((r) => r.priority));
      },
    ));
  });
});

describe('requirements', () => {
  const edge = { memMb: 8_192, gpu: 1, labels: { zone: 'edge' } };
  const core = { memMb: 32_768, gpu: 0, labels: { zone: 'core' } };

  test('a node satisfies a job when every label matches and it has the memory and GPUs', () => {
    assert.ok(satisfies({ gpu: 1, labels: { zone: 'edge' } }, edge));
    assert.ok(!satisfies({ gpu: 1, labels: { zone: 'edge' } }, core));
    assert.ok(satisfies(null, core));
    assert.ok(!satisfies({ memMb: 16_000 }, edge));
  });

  test('the pending reason names what no live node has, or the combination none has', () => {
    assert.equal(pendingReason({ labels: { zone: 'mars' } }, [edge, core]), 'no live node has label zone=mars');
    assert.equal(pendingReason({ gpu: 2 }, [edge, core]), 'no live node has 2 GPUs (most: 1)');
    assert.equal(pendingReason({ memMb: 65_536 }, [edge, core]), 'no live node has 65536 MB of memory (most: 32768 MB)');
    assert.equal(pendingReason({ gpu: 1, memMb: 16_000 }, [edge, core]), 'no live node has all of: 1 GPU, 16000 MB of memory');
    assert.equal(pendingReason({ gpu: 1 }, []), 'no live node handles its type');
    assert.equal(pendingReason({ gpu: 1 }, [edge]), null);
    assert.equal(describeRequirements({ labels: { zone: 'edge' }, gpu: 1 }), 'label zone=edge, 1 GPU');
  });

  test('a node bids only for jobs it satisfies and has free; the award keeps within free memory and GPUs', () => {
    const p = auctionPolicy(heuristicScorer);
    const self = {
      nodeId: 'n1',
      slots: 4,
      free: 4,
      running: 0,
      speed: 1,
      recentWins: 0,
      idleMs: 0,
      handles: () => true,
      capacity: edge,
      freeUsage: { memMb: 8_192, gpu: 1 },
    };
    const jobs = [
      { id: 'gpu', type: 'primes', priority: 5, lastNode: null, requires: { gpu: 1 } },
      { id: 'mars', type: 'primes', priority: 5, lastNode: null, requires: { labels: { zone: 'mars' } } },
      { id: 'plain', type: 'primes', priority: 5, lastNode: null },
    ];
    assert.deepEqual((p.bid(jobs, self) as NodeBid['bids']).map((b) => b.id), ['gpu', 'plain']);
    assert.deepEqual((p.bid(jobs, { ...self, freeUsage: { memMb: 8_192, gpu: 0 } }) as NodeBid['bids']).map((b) => b.id), ['plain']);
    const two = [jobs[0]!, { ...jobs[0]!, id: 'gpu2' }];
    const bids: NodeBid[] = [{ node: 'n1', free: 4, freeUsage: { memMb: 8_192, gpu: 1 }, bids: two.map((j) => ({ id: j.id, score: 1 })) }];
    assert.deepEqual([...greedyAward(two, bids)], [['n1', ['gpu']]], 'one GPU: one of the two GPU jobs');
  });
});

describe('slots: compute, I/O and yields', () => {
  const limits = { slots: 2, ioSlots: 1, memMb: 1_000, gpu: 1 };

  test('a job in I/O gives its compute slot back within the I/O limit; back to compute waits for a slot', async () => {
    const s = new Slots(limits);
    assert.ok(s.reserve() && s.reserve());
    s.hold('a');
    s.hold('b');
    assert.equal(s.computeFree, 0);
    assert.equal(s.toIo('a'), true);
    assert.equal(s.computeFree, 1, "a's slot is free while it waits on I/O");
    assert.equal(s.toIo('b'), false, 'the I/O limit (1) is reached: b keeps its slot');
    assert.ok(s.reserve());
    s.hold('c');
    let back = false;
    const wait = s.toCompute('a', new AbortController().signal).then(() => (back = true));
    await Promise.resolve();
    assert.equal(back, false, 'no compute slot free: a waits');
    assert.equal(s.computeFree, 0, 'a waiter goes before new starts');
    s.release('c');
    await wait;
    assert.equal(back, true);
    assert.equal(s.computing, 2);
  });

  test('a waiter whose job is aborted leaves the queue; memory and GPUs are held from start to end', async () => {
    const s = new Slots(limits);
    assert.ok(s.reserve());
    assert.ok(s.reserveUsage({ memMb: 600, gpu: 1 }));
    assert.ok(!s.reserveUsage({ memMb: 600, gpu: 0 }), 'memory is taken by the reservation');
    s.hold('g', { memMb: 600, gpu: 1 });
    assert.deepEqual(s.freeUsage, { memMb: 400, gpu: 0 });
    s.toIo('g');
    assert.deepEqual(s.freeUsage, { memMb: 400, gpu: 0 }, 'I/O keeps memory and GPUs');
    assert.ok(s.reserve() && s.reserve());
    s.hold('x');
    s.hold('y');
    const abort = new AbortController();
    const back = s.toCompute('g', abort.signal);
    abort.abort(new Error('preempted'));
    await assert.rejects(back, /preempted/);
    assert.equal(s.computeFree, 0);
    s.release('g');
    assert.deepEqual(s.freeUsage, { memMb: 1_000, gpu: 1 });
  });
});
