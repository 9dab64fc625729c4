// Placement as a policy: offer order, bids from the scorer, the greedy award.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyJobEvent, newJobRecord } from '../../machines/job.machine.ts';
import type { JobRecord } from '../../api/contract.ts';
import { fairness, gini } from '../../policies/fairness.ts';
import {
  agingBonus,
  agingBonusMax,
  auctionPolicy,
  awardDiscount,
  centralizedPolicy,
  effectivePriority,
  greedyAward,
  leastLoadedAward,
  type NodeBid,
  type OfferedJob,
  offerOrder,
} from '../../policies/placement.ts';
import { heuristicScorer } from '../../policies/scorer.ts';

const job = (id: string, priority: number, createdAt: number): JobRecord =>
  newJobRecord({ id, type: 'noop', input: null, priority, maxAttempts: 3, timeoutMs: 1000 }, createdAt);
const offered = (ids: string[]): OfferedJob[] => ids.map((id) => ({ id, type: 'noop', priority: 5, lastNode: null }));

describe('placement policy', () => {
  test('offer order: highest priority first, then oldest; not before the retry backoff; only queued jobs', () => {
    const a = job('a', 5, 3);
    const b = job('b', 9, 5);
    const c = job('c', 5, 1);
    const backingOff = { ...job('d', 9, 0), notBefore: 100 };
    const running = applyJobEvent(job('e', 9, 0), { type: 'job.assign', node: 'n1', at: 1 })!;
    assert.deepEqual(offerOrder([a, b, c, backingOff, running], 50).map((r) => r.id), ['b', 'c', 'a']);
    assert.deepEqual(offerOrder([a, backingOff], 100).map((r) => r.id), ['d', 'a']);
  });

  test('a node bids for what it handles while it has a free slot, higher where it holds the checkpoint', () => {
    const p = auctionPolicy(heuristicScorer);
    const self = { nodeId: 'n1', slots: 4, free: 2, running: 2, speed: 1, recentWins: 0, idleMs: 0, handles: (t: string) => t === 'noop' };
    const jobs = [...offered(['a']), { id: 'b', type: 'noop', priority: 5, lastNode: 'n1' }, {
      id: 'c',
      type: 'exec',
      priority: 5,
      lastNode: null,
    }];
    const bids = p.bid(jobs, self) as NodeBid['bids'];
    assert.deepEqual(bids.map((b) => b.id), ['a', 'b']);
    assert.ok(bids[1]!.score > bids[0]!.score);
    assert.deepEqual(p.bid(jobs, { ...self, free: 0 }), []);
    assert.equal(p.name, 'auction+heuristic');
  });

  test('award: the best bid wins, within capacity; a node that won this round counts less for the next job', () => {
    const bids: NodeBid[] = [
      { node: 'n1', free: 1, bids: [{ id: 'a', score: 10 }, { id: 'b', score: 10 }] },
      { node: 'n2', free: 2, bids: [{ id: 'a', score: 9 }, { id: 'b', score: 9 }, { id: 'c', score: 9 }] },
    ];
    assert.deepEqual([...greedyAward(offered(['a', 'b', 'c']), bids)], [['n1', ['a']], ['n2', ['b', 'c']]]);
    // Equal capacity: after n1 wins `a`, n2's 9 beats n1's 10 - discount.
    const even = bids.map((b) => ({ ...b, free: 3 }));
    assert.equal(awardDiscount > 1, true);
    assert.deepEqual(greedyAward(offered(['a', 'b']), even).get('n2'), ['b']);
  });

  test('centralized: no bids asked; each job to the node with the most free slots left, in offer order', () => {
    const p = centralizedPolicy();
    assert.equal(p.asks, false);
    assert.equal(auctionPolicy().asks, true);
    const view: NodeBid[] = [
      { node: 'n1', free: 1, bids: offered(['a', 'b', 'c', 'd']).map((j) => ({ id: j.id, score: 0 })) },
      { node: 'n2', free: 3, bids: offered(['a', 'b', 'c']).map((j) => ({ id: j.id, score: 0 })) },
    ];
    // n2 (3 free) takes a and b; then both have 1: the first listed, n1, takes c; d only n1 handles, and it is full.
    assert.deepEqual([...p.award(offered(['a', 'b', 'c', 'd']), view)], [['n2', ['a', 'b']], ['n1', ['c']]]);
  });

  test("property: the award never exceeds a node's free slots, never gives a job twice, and only to a bidder", () => {
    const arb = fc.array(
      fc.record({
        node: fc.constantFrom('n1', 'n2', 'n3'),
        free: fc.nat({ max: 4 }),
        bids: fc.array(fc.record({ id: fc.constantFrom('a', 'b', 'c', 'd', 'e'), score: fc.double({ min: -10, max: 10, noNaN: true }) }), {
          maxLength: 5,
        }),
      }),
      { maxLength: 3 },
    ).map((bs) => bs.filter((b, i) => bs.findIndex((x) => x.node === b.node) === i));
    fc.assert(
      fc.property(arb, (bids) => {
        for (const award of [greedyAward, leastLoadedAward]) {
          const awards = award(offered(['a', 'b', 'c', 'd', 'e']), bids);
          const given = [...awards.values()].flat();
          assert.equal(new Set(given).size, given.length);
          for (const [node, ids] of awards) {
            const b = bids.find((x) => x.node === node)!;
            assert.ok(ids.length <= b.free);
            for (const id of ids) assert.ok(b.bids.some((x) => x.id === id));
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('fairness', () => {
  const ran = (id: string, node: string, startedAt: number, endedAt: number | null): JobRecord => {
    const r = applyJobEvent(job(id, 5, 0), { type: 'job.assign', node, at: startedAt })!;
    const s = applyJobEvent(r, { type: 'job.start', node, attempt: 1, resumedFrom: 0, at: startedAt })!;
    return endedAt === null ? s : applyJobEvent(s, { type: 'job.succeed', attempt: 1, result: null, at: endedAt })!;
  };

  test('Gini: 0 when even, (n−1)/n when one node did everything', () => {
    assert.equal(gini([3, 3, 3]), 0);
    assert.equal(gini([0, 0, 6]), 2 / 3);
    assert.equal(gini([]), 0);
    assert.equal(gini([0, 0]), 0);
  });

  test('work per node counts only the window, a running attempt up to now, and idle live nodes as 0', () => {
    const records = [ran('a', 'n1', 0, 10_000), ran('b', 'n1', 50_000, 70_000), ran('c', 'n2', 55_000, null)];
    const f = fairness(records, ['n1', 'n2', 'n3'], 70_000, 20_000);
    assert.deepEqual(f.jobSeconds, { n1: 20, n2: 15, n3: 0 });
    assert.equal(f.gini, Math.round(gini([20, 15, 0]) * 1e4) / 1e4);
    // Without a node list: the nodes that ran work in the window.
    assert.deepEqual(fairness(records, undefined, 70_000, 20_000).jobSeconds, { n1: 20, n2: 15 });
  });

  test('aging: a job gains a level per 10 s waited up to 9, never loses one; an idle node gains at most 5', () => {
    const low = job('low', 1, 0);
    assert.equal(effectivePriority(low, 9_999), 1);
    assert.equal(effectivePriority(low, 30_000), 4);
    assert.equal(effectivePriority(low, 10 * 60_000), 9);
    assert.equal(effectivePriority(job('top', 9, 0), 60_000), 9);
    // A delayed job ages from when it is due, not from its submit; a retry's backoff does not reset its age.
    assert.equal(effectivePriority({ ...low, notBefore: 3_600_000, attempt: 0 }, 3_600_000 + 9_999), 1);
    assert.equal(effectivePriority({ ...low, notBefore: 3_600_000, attempt: 0 }, 3_600_000 + 20_000), 3);
    assert.equal(effectivePriority({ ...low, notBefore: 25_000, attempt: 2 }, 30_000), 4);
    // An old priority-1 job goes before a fresh priority-5 one once it has waited 40 s.
    assert.deepEqual(offerOrder([job('fresh', 5, 40_000), low], 40_000).map((r) => r.id), ['low', 'fresh']);
    assert.deepEqual(offerOrder([job('fresh', 5, 30_000), low], 30_000).map((r) => r.id), ['fresh', 'low']);
    assert.equal(agingBonus(0), 0);
    assert.equal(agingBonus(4_000), 2);
    assert.equal(agingBonus(3_600_000), agingBonusMax);
  });
});
