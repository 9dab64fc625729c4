// The model-based simulation layer of the chaos suite: fast-check generates a
// cluster size, a seed (network latencies) and a command list (submit, kill,
// pause, partition, drop-replies, duplicate, advance...: chaos/faults.ts names
// the faults); each case runs the real node code on virtual time (world.ts), stops the faults, lets the cluster converge
// and judges the history with the same checker as real-process runs. A failure
// shrinks to a short command list and replays from its seed and path.
import { simDefaults } from '../defaults.ts';
import { finishCase } from './finish.ts';
import fc from 'fast-check';
import type { InspectionEvent } from 'xstate';
import type { Transition } from '../../nats/events.ts';
import type { Violation } from '../history.ts';
import { kindOf } from '../faults.ts';
import { type CommandShape, initialModel, simCommands, type SimReal } from './commands.ts';
import { type SimVariant, SimWorld } from './world.ts';

export type SimShape = CommandShape & {
  minNodes: number;
  /** Lease TTL of the simulated cluster. */
  ttlMs: number;
  /** Job slots per node. */
  slots: number;
  variant?: SimVariant;
  /** How the leader places jobs (default: dispatch, as real nodes do). */
  placement?: 'dispatch' | 'auction';
  /** Told of every inspection event of every node's actors (the coverage test). */
  inspect?: (ev: InspectionEvent) => void;
};

export const defaultShape: SimShape = {
  minNodes: 2,
  maxNodes: 4,
  maxJobs: 6,
  maxCommands: 25,
  ttlMs: simDefaults.leaseTtlMs,
  slots: simDefaults.slots,
};

export type CaseSummary = {
  /** The world's seed (network latencies) and size. */
  seed: number;
  nodes: number;
  /** The commands that ran, as log lines. */
  commands: string[];
  faults: Record<string, number>;
  jobs: number;
  /** Attempts that ended preempted (for a higher-priority job, or by a drain), and jobs that waited with a pending reason. */
  preempted: number;
  waitedWithReason: number;
  violations: Violation[];
  recovery: { leaderMs: number | null; allTerminalMs: number | null };
  boundMs: number;
  /** Virtual ms the case spanned, timers fired, transitions recorded, real ms it took. */
  virtualMs: number;
  timers: number;
  transitions: number;
  wallMs: number;
  /** The nodes' last log lines (for a failure report). */
  logs: string[];
  /** Every transition the nodes recorded. */
  history: Transition[];
};

/** Thrown by the property so fast-check shrinks; carries the case. */
export class SimFailure extends Error {
  readonly summary: CaseSummary;
  constructor(summary: CaseSummary) {
    super(
      `${summary.violations.length} invariant violation(s):\n${
        summary.violations.map((v) => `  ${v.invariant} [${v.subject}]: ${v.message}`).join('\n')
      }\ncommands:\n  ${summary.commands.join('\n  ')}`,
    );
    this.name = 'SimFailure';
    this.summary = summary;
  }
}

/** Collect what code under test leaves unhandled: a real process would die of it. */
function catchUnhandled(sink: (reason: unknown) => void): () => void {
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  if (deno) {
    const h = (e: PromiseRejectionEvent) => {
      e.preventDefault();
      sink(e.reason);
    };
    globalThis.addEventListener('unhandledrejection', h);
    return () => globalThis.removeEventListener('unhandledrejection', h);
  }
  const h = (reason: unknown) => sink(reason);
  process.on('unhandledRejection', h);
  return () => void process.off('unhandledRejection', h);
}

/** Run one case: boot, play the commands, stop the faults, converge, check. */
export async function runCase(
  shape: SimShape,
  seed: number,
  nodes: number,
  cmds: Iterable<fc.AsyncCommand<ReturnType<typeof initialModel>, SimReal>>,
): Promise<CaseSummary> {
  const started = performance.now();
  const world = new SimWorld({
    seed,
    nodes,
    ttlMs: shape.ttlMs,
    slots: shape.slots,
    variant: shape.variant,
    inspect: shape.inspect,
    placement: shape.placement,
  });
  const release = catchUnhandled((reason) => world.errors.push(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`));
  const real: SimReal = { world, executed: [], faults: {} };
  try {
    await world.start();
    const t0 = world.clock.now();
    await fc.asyncModelRun(() => ({ model: initialModel(nodes), real }), cmds);
    const result = await finishCase(world);
    await world.clock.settle();
    return {
      seed,
      nodes,
      commands: real.executed,
      faults: real.faults,
      jobs: result.records.length,
      preempted: result.records.reduce((a, r) => a + r.preemptions, 0),
      waitedWithReason: new Set(result.history.filter((t) => t.event === 'job.pending').map((t) => t.actor)).size,
      violations: result.violations,
      recovery: result.recovery,
      boundMs: result.boundMs,
      virtualMs: world.clock.now() - t0,
      timers: world.clock.fired,
      transitions: world.history.length,
      wallMs: performance.now() - started,
      logs: world.logs.slice(-80),
      history: world.history,
    };
  } finally {
    world.dispose();
    release();
  }
}

/** The property: every case's history passes the checker. */
export function simProperty(shape: SimShape = defaultShape, onCase?: (s: CaseSummary) => void) {
  return fc.asyncProperty(
    fc.integer({ min: 0, max: 0x7fffffff }),
    fc.integer({ min: shape.minNodes, max: shape.maxNodes }),
    simCommands(shape),
    async (seed, nodes, cmds) => {
      const summary = await runCase(shape, seed, nodes, cmds);
      onCase?.(summary);
      if (summary.violations.length > 0) throw new SimFailure(summary);
    },
  );
}

export type SimFailureReport = {
  /** fast-check's seed, path and command replay hint: `replaySimulation({ seed, path, replayPath })` reruns exactly this case. */
  seed: number;
  path: string;
  replayPath: string;
  /** The shrunk command list, as log lines. */
  commands: string[];
  violations: Violation[];
  nodes: number;
  worldSeed: number;
  /** Cases run while shrinking. */
  shrinks: number;
  logs: string[];
  history: Transition[];
};

export type SimReport = {
  runs: number;
  seed: number;
  wallMs: number;
  /** Executed commands and injected faults, by kind, over the generated cases (not the shrinking ones). */
  commands: Record<string, number>;
  faults: Record<string, number>;
  jobs: number;
  preempted: number;
  waitedWithReason: number;
  checks: { passed: number; failed: number };
  /** Per case: virtual ms from the end of faults to a leader, and to every job terminal. */
  recovery: Array<{ leaderMs: number | null; allTerminalMs: number | null }>;
  virtualMs: number;
  failure: SimFailureReport | null;
};

export type SimulationOptions = {
  runs: number;
  seed?: number;
  nodes?: number;
  maxCommands?: number;
  shape?: Partial<SimShape>;
  onRun?: (i: number, r: CaseSummary) => void;
};

export function shapeOf(options: Pick<SimulationOptions, 'nodes' | 'maxCommands' | 'shape'>): SimShape {
  const s = { ...defaultShape, ...options.shape };
  if (options.nodes !== undefined) {
    s.minNodes = options.nodes;
    s.maxNodes = options.nodes;
  }
  if (options.maxCommands !== undefined) s.maxCommands = options.maxCommands;
  return s;
}

/** Run `runs` generated cases; on a failure, shrink it and report the smallest command list. */
export async function runSimulation(options: SimulationOptions): Promise<SimReport> {
  const started = performance.now();
  const seed = options.seed ?? (Date.now() ^ 0x5bd1e995) | 0;
  const report: SimReport = {
    runs: 0,
    seed,
    wallMs: 0,
    commands: {},
    faults: {},
    jobs: 0,
    preempted: 0,
    waitedWithReason: 0,
    checks: { passed: 0, failed: 0 },
    recovery: [],
    virtualMs: 0,
    failure: null,
  };
  let failing: CaseSummary | null = null;
  let shrinks = 0;
  const prop = simProperty(shapeOf(options), (s) => {
    if (failing) {
      shrinks++;
      if (s.violations.length > 0) failing = s;
      return;
    }
    const i = report.runs++;
    for (const c of s.commands) report.commands[kindOf(c)] = (report.commands[kindOf(c)] ?? 0) + 1;
    for (const [k, v] of Object.entries(s.faults)) report.faults[k] = (report.faults[k] ?? 0) + v;
    report.jobs += s.jobs;
    report.preempted += s.preempted;
    report.waitedWithReason += s.waitedWithReason;
    report.virtualMs += s.virtualMs;
    report.recovery.push(s.recovery);
    if (s.violations.length > 0) {
      report.checks.failed++;
      failing = s;
    } else report.checks.passed++;
    options.onRun?.(i, s);
  });
  const details = await fc.check(prop, { numRuns: options.runs, seed });
  report.wallMs = performance.now() - started;
  const f = failing as CaseSummary | null;
  if (details.failed && f) {
    report.failure = {
      seed: details.seed,
      path: details.counterexamplePath ?? '',
      replayPath: replayPathOf(details.counterexample?.[2]),
      commands: f.commands,
      violations: f.violations,
      nodes: f.nodes,
      worldSeed: f.seed,
      shrinks,
      logs: f.logs,
      history: f.history,
    };
  } else if (details.failed) {
    throw details.errorInstance ?? new Error('simulation failed without a case (interrupted or too many skips)');
  }
  return report;
}

/** fast-check prints a command list followed by its replay hint in a comment: `replayPath="..."`. */
function replayPathOf(cmds: unknown): string {
  return /replayPath="([^"]*)"/.exec(String(cmds ?? ''))?.[1] ?? '';
}

/** Rerun exactly one case from a failure's seed, path and replay hint (same shape options as the run that found it). */
export async function replaySimulation(
  options: { seed: number; path: string; replayPath: string } & Pick<SimulationOptions, 'nodes' | 'maxCommands' | 'shape'>,
): Promise<CaseSummary | null> {
  let last: CaseSummary | null = null;
  const shape = { ...shapeOf(options), replayPath: options.replayPath };
  await fc.check(simProperty(shape, (s) => (last = s)), { seed: options.seed, path: options.path, numRuns: 1, endOnFailure: true });
  return last;
}

export type { SimVariant } from './world.ts';
