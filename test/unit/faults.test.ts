// Generated fault schedules are well-formed whatever fast-check draws or
// shrinks to: in time order, unique job ids, one nats-server down at a time,
// no timed fault stacked on the same fault of the same node.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describeFault, type Fault, faultCatalog, faultDurationMs } from '../../chaos/faults.ts';
import {
  allJobs,
  describeSchedule,
  faultsEndMs,
  normalize,
  realFaultKinds,
  type Schedule,
  scheduleArb,
  type ScheduleShape,
} from '../../chaos/real/schedule.ts';

const shape: ScheduleShape = { nodes: 3, servers: 3, durationMs: 10_000, leaseTtlMs: 4_000 };

describe('fault schedules', () => {
  test('property: generated schedules are well-formed', () => {
    fc.assert(
      fc.property(scheduleArb(shape), (s) => {
        const ats = s.steps.map((x) => x.at);
        assert.deepEqual(ats, [...ats].sort((a, b) => a - b));
        assert.ok(ats.every((t) => t >= 0 && t <= shape.durationMs));
        const ids = allJobs(s).map((j) => j.id);
        assert.equal(new Set(ids).size, ids.length, `duplicate job ids: ${ids}`);
        assert.ok(s.initial.length >= 2);
        const windows = (key: (f: Schedule['steps'][number]['fault']) => string | null) => {
          const open = new Map<string, number>();
          for (const x of s.steps) {
            const k = key(x.fault);
            if (k === null) continue;
            assert.ok(x.at >= (open.get(k) ?? 0), `${k} overlaps: ${describeSchedule(s).join('; ')}`);
            open.set(k, x.at + faultDurationMs(x.fault));
          }
        };
        windows((f) => (f.kind === 'kill-server' ? 'server' : null));
        windows((f) => (f.kind === 'partition-leader' ? 'leader' : null));
        windows((f) => (f.kind === 'pause-leader' ? 'paused leader' : null));
        windows((f) => (f.kind === 'pause' || f.kind === 'partition' || f.kind === 'latency' ? `${f.kind}${f.node}` : null));
        for (const x of s.steps) {
          const f = x.fault;
          if ('node' in f) assert.ok(f.node >= 0 && f.node < shape.nodes);
          if (f.kind === 'kill-server') assert.ok(f.server >= 0 && f.server < shape.servers);
          // Pauses and partitions straddle the lease TTL: some must cost the lease, some must not.
          if (f.kind === 'pause' || f.kind === 'pause-leader' || f.kind === 'partition' || f.kind === 'partition-leader') {
            assert.ok(f.ms >= shape.leaseTtlMs * 0.2 && f.ms <= shape.leaseTtlMs * 2);
          }
        }
        assert.ok(faultsEndMs(s) >= Math.max(0, ...ats));
      }),
      { numRuns: 500 },
    );
  });

  test('a single server is never killed when there is only one', () => {
    fc.assert(fc.property(scheduleArb({ ...shape, servers: 1 }), (s) => s.steps.every((x) => x.fault.kind !== 'kill-server')), {
      numRuns: 200,
    });
  });

  test('the leaf link is cut only in schedules for a cluster with an edge site', () => {
    const kinds = (leaf: boolean) => fc.sample(scheduleArb({ ...shape, leaf }), 300).flatMap((s) => s.steps.map((x) => x.fault.kind));
    assert.ok(!kinds(false).includes('cut-leaf'));
    assert.ok(kinds(true).includes('cut-leaf'));
    assert.equal(describeFault({ kind: 'cut-leaf', mode: 'blackhole', ms: 3000 }), 'cut-leaf(blackhole, 3000ms)');
  });

  test('normalize drops a second server kill while one is down, and renames jobs by position', () => {
    const s = normalize({
      initial: [{ id: 'x', kind: 'sleep', ms: 10 }, { id: 'x', kind: 'fail' }],
      steps: [
        { at: 2_000, fault: { kind: 'kill-server', server: 1, ms: 1_000 } },
        { at: 100, fault: { kind: 'kill-server', server: 0, ms: 2_500 } },
        { at: 3_000, fault: { kind: 'kill-server', server: 2, ms: 500 } },
        { at: 50_000, fault: { kind: 'kill-leader' } },
      ],
    }, shape);
    assert.deepEqual(s.initial.map((j) => j.id), ['j1', 'j2']);
    assert.deepEqual(describeSchedule(s), [
      't=0: submit(j1:sleep(10ms), j2:fail)',
      't=100: kill-server(s1, 2500ms)',
      't=3000: kill-server(s3, 500ms)',
    ]);
    assert.equal(faultsEndMs(s), 3_500);
  });

  test('one vocabulary: every fault a real schedule draws is in the catalog, marked as a real fault', () => {
    fc.assert(
      fc.property(scheduleArb(shape), (s) => {
        for (const x of s.steps) if (x.fault.kind !== 'submit') assert.equal(faultCatalog[x.fault.kind].real, true, x.fault.kind);
      }),
      { numRuns: 200 },
    );
    assert.deepEqual(
      [...realFaultKinds].sort(),
      Object.keys(faultCatalog).filter((k) => faultCatalog[k as keyof typeof faultCatalog].real).sort(),
    );
  });

  test('a fault reads the same in both layers: kind(node, args)', () => {
    const lines = ([
      { kind: 'kill', node: 1 },
      { kind: 'kill-leader' },
      { kind: 'pause', node: 0, ms: 1500 },
      { kind: 'pause', node: 0 },
      { kind: 'partition', node: 2, mode: 'blackhole' },
      { kind: 'latency', node: 1, delayMs: 55, ms: 3830 },
      { kind: 'drop-replies', node: 0, count: 2 },
    ] satisfies Fault[]).map(describeFault);
    assert.deepEqual(lines, [
      'kill(n2)',
      'kill-leader',
      'pause(n1, 1500ms)',
      'pause(n1)',
      'partition(n3, blackhole)',
      'latency(n2, +55ms, 3830ms)',
      'drop-replies(n1, 2)',
    ]);
  });
});
