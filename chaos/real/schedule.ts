// Fault schedules for the real-process chaos runs: which faults (named in
// chaos/faults.ts) and job bursts happen when, as plain data (so a schedule can
// be printed, saved and replayed), and the fast-check arbitraries that
// generate and shrink them.
import fc from 'fast-check';
import { describeFault, type Fault, faultDurationMs, type FaultKind, type PartitionMode } from '../faults.ts';

/** A job the schedule submits; `expect` is what a correct cluster must end it with. `priority`: a mix makes preemptions. */
export type ChaosJob =
  & (
    | { id: string; kind: 'primes'; limit: number }
    | { id: string; kind: 'sleep'; ms: number }
    /** A command that exits non-zero: retried, then `failed`. */
    | { id: string; kind: 'fail' }
    /** A long sleep cancelled `afterMs` after it was submitted. */
    | { id: string; kind: 'cancel'; ms: number; afterMs: number }
  )
  & { priority?: number };

/** The faults a real run injects (timed ones carry how long they last), and job bursts. */
export type RealFault =
  | Extract<Fault, { kind: 'kill' | 'kill-leader' | 'kill-standby' | 'restart' | 'kill-server' }>
  | (Extract<Fault, { kind: 'pause' | 'pause-leader' | 'partition' | 'partition-leader' | 'latency' | 'cut-leaf' }> & { ms: number });

export type Submit = { kind: 'submit'; jobs: ChaosJob[] };

const partitionMode = fc.constantFrom<PartitionMode>('reset', 'blackhole', 'drop');

/** What a real run can inject, in the order the summary lists them. */
export const realFaultKinds: readonly FaultKind[] = [
  'kill',
  'kill-leader',
  'kill-standby',
  'restart',
  'pause',
  'pause-leader',
  'kill-server',
  'partition',
  'partition-leader',
  'latency',
  'cut-leaf',
];

export type Step = { at: number; fault: RealFault | Submit };

export type Schedule = {
  /** Jobs submitted before the first fault. */
  initial: ChaosJob[];
  steps: Step[];
};

export type ScheduleShape = {
  nodes: number;
  servers: number;
  /** Faults are drawn within this window (ms from the start). */
  durationMs: number;
  leaseTtlMs: number;
  maxSteps?: number;
  /** The last node is an edge node behind a leaf-node server: schedules also cut the leaf link. */
  leaf?: boolean;
};

export function describeJob(j: ChaosJob): string {
  return j.priority === undefined ? describeKind(j) : `${describeKind(j)}@p${j.priority}`;
}

function describeKind(j: ChaosJob): string {
  switch (j.kind) {
    case 'primes':
      return `${j.id}:primes(${j.limit})`;
    case 'sleep':
      return `${j.id}:sleep(${j.ms}ms)`;
    case 'fail':
      return `${j.id}:fail`;
    case 'cancel':
      return `${j.id}:cancel(sleep ${j.ms}ms, after ${j.afterMs}ms)`;
  }
}

/** A step as a log line: `kill(n2)`, `pause(n1, 1500ms)`, `submit(j1:primes(158000), ...)`. */
export function describeStep(f: Step['fault']): string {
  return f.kind === 'submit' ? `submit(${f.jobs.map(describeJob).join(', ')})` : describeFault(f);
}

export function describeSchedule(s: Schedule): string[] {
  return [
    `t=0: ${describeStep({ kind: 'submit', jobs: s.initial })}`,
    ...s.steps.map((x) => `t=${x.at}: ${describeStep(x.fault)}`),
  ];
}

/** When the last fault of a schedule is over (ms from the start). */
export function faultsEndMs(s: Schedule): number {
  return Math.max(0, ...s.steps.map((x) => x.at + faultDurationMs(x.fault)));
}

/** Fault kinds a schedule injects, with counts (submits not counted as faults). */
export function countFaults(s: Schedule): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of s.steps) if (x.fault.kind !== 'submit') out[x.fault.kind] = (out[x.fault.kind] ?? 0) + 1;
  return out;
}

export function allJobs(s: Schedule): ChaosJob[] {
  return [...s.initial, ...s.steps.flatMap((x) => (x.fault.kind === 'submit' ? x.fault.jobs : []))];
}

/**
 * Jobs, with ids made unique by position so shrinking (which drops and
 * changes elements) never produces two jobs with one id.
 */
function jobArb(): fc.Arbitrary<Omit<ChaosJob, 'id'>> {
  // Most at the default priority; some low, some urgent: with every slot busy, an urgent one preempts.
  const priority = fc.constantFrom<number | undefined>(undefined, undefined, 1, 9);
  return fc.tuple(kindArb(), priority).map(([j, p]) => (p === undefined ? j : { ...j, priority: p }));
}

function kindArb(): fc.Arbitrary<Omit<ChaosJob, 'id'>> {
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({ kind: fc.constant('primes' as const), limit: fc.integer({ min: 20, max: 160 }).map((k) => k * 1000) }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('sleep' as const), ms: fc.integer({ min: 100, max: 2_500 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'fail' as const }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('cancel' as const),
        ms: fc.integer({ min: 2_000, max: 6_000 }),
        afterMs: fc.integer({ min: 0, max: 1_500 }),
      }),
    },
  );
}

function name(jobs: Array<Omit<ChaosJob, 'id'>>, prefix: string): ChaosJob[] {
  return jobs.map((j, i) => ({ ...j, id: `${prefix}${i + 1}` }) as ChaosJob);
}

export function faultArb(shape: ScheduleShape): fc.Arbitrary<Step['fault']> {
  const node = fc.integer({ min: 0, max: shape.nodes - 1 });
  const ttl = shape.leaseTtlMs;
  const kinds: Array<{ weight: number; arbitrary: fc.Arbitrary<Step['fault']> }> = [
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('kill' as const), node }) },
    { weight: 3, arbitrary: fc.constant({ kind: 'kill-leader' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'kill-standby' as const }) },
    // A leader frozen past its lease wakes as a stale dispatcher.
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('pause-leader' as const),
        ms: fc.integer({ min: Math.round(ttl * 0.2), max: Math.round(ttl * 2) }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('restart' as const), node }) },
    // Shorter and longer than the lease TTL: a short pause must not cost the lease, a long one must fence.
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('pause' as const),
        node,
        ms: fc.integer({ min: Math.round(ttl * 0.2), max: Math.round(ttl * 2) }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('partition' as const),
        node,
        ms: fc.integer({ min: Math.round(ttl * 0.2), max: Math.round(ttl * 2) }),
        mode: partitionMode,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('partition-leader' as const),
        ms: fc.integer({ min: Math.round(ttl * 0.2), max: Math.round(ttl * 2) }),
        mode: partitionMode,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('latency' as const),
        node,
        delayMs: fc.integer({ min: 5, max: 150 }),
        ms: fc.integer({ min: 500, max: 4_000 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('submit' as const),
        jobs: fc.array(jobArb(), { minLength: 1, maxLength: 4 }).map((j) => name(j, 'x')),
      }),
    },
  ];
  if (shape.leaf) {
    kinds.push({
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('cut-leaf' as const),
        ms: fc.integer({ min: Math.round(ttl * 0.2), max: Math.round(ttl * 2) }),
        mode: partitionMode,
      }),
    });
  }
  if (shape.servers > 1) {
    kinds.push({
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('kill-server' as const),
        server: fc.integer({ min: 0, max: shape.servers - 1 }),
        ms: fc.integer({ min: 500, max: 5_000 }),
      }),
    });
  }
  return fc.oneof(...kinds);
}

/**
 * Make a generated schedule well-formed: steps in time order; submit bursts
 * get unique job ids; at most one nats-server down at a time (a 3-server
 * cluster keeps its quorum, so KV stays writable) and no timed fault on top of
 * the same fault on the same node; nothing after the window.
 */
export function normalize(s: Schedule, shape: ScheduleShape): Schedule {
  const steps = [...s.steps].filter((x) => x.at >= 0 && x.at <= shape.durationMs).sort((a, b) => a.at - b.at);
  /** A timed fault on a target already under the same kind of fault is dropped: its undo would cut the first one short. */
  const busyUntil = new Map<string, number>();
  const out: Step[] = [];
  let burst = 0;
  for (const x of steps) {
    const f = x.fault;
    const target = f.kind === 'kill-server'
      ? 'servers'
      : f.kind === 'partition-leader' || f.kind === 'pause-leader'
      ? f.kind
      : f.kind === 'partition' || f.kind === 'latency' || f.kind === 'pause'
      ? `${f.kind}:${f.node}`
      : null;
    if (target !== null) {
      if (x.at < (busyUntil.get(target) ?? 0)) continue;
      busyUntil.set(target, x.at + faultDurationMs(f) + 1);
    }
    if (f.kind === 'submit') {
      burst++;
      out.push({ at: x.at, fault: { kind: 'submit', jobs: f.jobs.map((j, i) => ({ ...j, id: `b${burst}-${i + 1}` })) } });
      continue;
    }
    out.push(x);
  }
  return { initial: s.initial.map((j, i) => ({ ...j, id: `j${i + 1}` })), steps: out };
}

export function scheduleArb(shape: ScheduleShape): fc.Arbitrary<Schedule> {
  return fc.record({
    initial: fc.array(jobArb(), { minLength: 2, maxLength: 8 }).map((j) => name(j, 'j')),
    steps: fc.array(fc.record({ at: fc.integer({ min: 0, max: shape.durationMs }), fault: faultArb(shape) }), {
      minLength: 2,
      maxLength: shape.maxSteps ?? 8,
    }),
  }).map((s) => normalize(s, shape));
}
