// The real-process chaos suite: fast-check generates fault schedules, each is
// played against fresh real processes (run.ts) and judged by the history
// checker; a failing schedule is shrunk within a budget of further runs and
// reported with its seed and path, ready to save and replay.
import fc from 'fast-check';
import { describeSchedule, type Schedule, scheduleArb, type ScheduleShape } from './schedule.ts';
import { type RunOptions, type RunResult, runSchedule } from './run.ts';

export type ChaosOptions = Omit<RunOptions, 'onProgress'> & {
  runs: number;
  seed?: number;
  /** Faults are drawn within this window (ms). */
  durationMs: number;
  maxSteps?: number;
  /** At most this many extra runs to shrink a failing schedule (each is a real run). */
  shrinkRuns: number;
  onRunStart?: (i: number, s: Schedule, shrinking: boolean) => void;
  onProgress?: (i: number, p: Parameters<NonNullable<RunOptions['onProgress']>>[0]) => void;
  onRunEnd?: (i: number, r: RunResult, shrinking: boolean) => void;
};

export type ChaosFailure = {
  seed: number;
  path: string;
  /** The smallest failing schedule found within the shrink budget. */
  schedule: Schedule;
  result: RunResult;
  shrinks: number;
};

export type ChaosReport = {
  seed: number;
  /** Results of the generated runs (not of shrinking re-runs). */
  results: RunResult[];
  failure: ChaosFailure | null;
};

export function shapeOf(
  options: Pick<ChaosOptions, 'nodes' | 'servers' | 'durationMs' | 'leaseTtlMs' | 'maxSteps' | 'leaf'>,
): ScheduleShape {
  return {
    nodes: options.nodes,
    servers: options.servers,
    durationMs: options.durationMs,
    leaseTtlMs: options.leaseTtlMs,
    maxSteps: options.maxSteps,
    leaf: options.leaf,
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const seed = options.seed ?? (Date.now() ^ (Math.random() * 0x100000000)) | 0;
  const results: RunResult[] = [];
  let failing: RunResult | null = null;
  let shrinkRunsLeft = options.shrinkRuns;
  let i = 0;
  /** The harness itself failed (a cluster that would not start...): not a finding about Shoal, stop. */
  let harnessError: Error | null = null;
  const prop = fc.asyncProperty(scheduleArb(shapeOf(options)), async (schedule) => {
    if (harnessError) return true;
    const shrinking = failing !== null;
    // Out of shrink budget: call every further candidate a pass, so the smallest failure so far stands.
    if (shrinking && shrinkRunsLeft-- <= 0) return true;
    const index = i++;
    options.onRunStart?.(index, schedule, shrinking);
    let r: RunResult;
    try {
      r = await runSchedule(schedule, { ...options, onProgress: (p) => options.onProgress?.(index, p) });
    } catch (err) {
      harnessError = err as Error;
      return true;
    }
    if (!shrinking) results.push(r);
    options.onRunEnd?.(index, r, shrinking);
    if (r.violations.length > 0) failing = r;
    return r.violations.length === 0;
  });
  const details = await fc.check(prop, { numRuns: options.runs, seed });
  if (harnessError) {
    throw new Error(`chaos run ${i} (seed ${seed}) could not be carried out: ${(harnessError as Error).message}`, { cause: harnessError });
  }
  const last = failing as RunResult | null;
  const failure = details.failed && last
    ? { seed: details.seed, path: details.counterexamplePath ?? '', schedule: last.schedule, result: last, shrinks: details.numShrinks }
    : null;
  if (details.failed && !last) throw details.errorInstance ?? new Error('chaos run failed without a result');
  return { seed, results, failure };
}

/** What a failure file holds: enough to read the story and to replay it. */
export type FailureFile = {
  kind: 'shoal-chaos-failure';
  seed: number;
  path: string;
  options: Pick<ChaosOptions, 'nodes' | 'servers' | 'leaseTtlMs' | 'durationMs' | 'leaf'>;
  schedule: Schedule;
  story: string[];
  violations: RunResult['violations'];
  history: RunResult['history'];
  records: RunResult['records'];
  logs: string;
};

export function failureFile(f: ChaosFailure, options: FailureFile['options']): FailureFile {
  return {
    kind: 'shoal-chaos-failure',
    seed: f.seed,
    path: f.path,
    options,
    schedule: f.schedule,
    story: describeSchedule(f.schedule),
    violations: f.result.violations,
    history: f.result.history,
    records: f.result.records,
    logs: f.result.logs,
  };
}

export function parseFailureFile(text: string, file: string): FailureFile {
  let v: Partial<FailureFile>;
  try {
    v = JSON.parse(text) as Partial<FailureFile>;
  } catch (err) {
    throw new Error(`${file} is not JSON: ${(err as Error).message}`);
  }
  if (v.kind !== 'shoal-chaos-failure' || !v.schedule || !v.options) {
    throw new Error(`${file} is not a chaos failure file (written by 'shoal chaos' on failure)`);
  }
  return v as FailureFile;
}
