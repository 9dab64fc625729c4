// One real-process chaos run: start the processes (cluster.ts), play a fault
// schedule against them (inject.ts), stop the faults, let the cluster
// converge, and judge the whole history with the checker. Everything it
// starts is stopped and removed before it returns, whatever happened.
import { strayReplicaRestartMs } from '../defaults.ts';
import { countPrimes } from '../../node/handlers.ts';
import { isTerminal } from '../../machines/job.machine.ts';
import type { JobRecord } from '../../api/contract.ts';
import { leaseTiming } from '../../machines/lease.rules.ts';
import { retryBackoffMs } from '../../base/defaults.ts';
import { readTransitions, type Transition } from '../../nats/events.ts';
import { JobStore } from '../../store/job.store.ts';
import { sleep, until } from '../../base/time.ts';
import { checkHistory } from '../checker.ts';
import { type Violation } from '../history.ts';
import { leaderSeenAt } from '../invariants.leaders.ts';
import { ChaosCluster, type ClusterOptions } from './cluster.ts';
import { endFaults, inject } from './inject.ts';
import { allJobs, type ChaosJob, countFaults, describeStep, faultsEndMs, type Schedule } from './schedule.ts';

export type RunOptions = Omit<ClusterOptions, 'log'> & {
  /** Called as the run moves on: phase name, and steps done of total in the fault phase. */
  onProgress?: (p: { phase: RunPhase; done: number; total: number; detail?: string }) => void;
  log?: (line: string) => void;
};

export type RunPhase = 'starting' | 'faults' | 'converging' | 'checking' | 'done';

export type RunResult = {
  schedule: Schedule;
  violations: Violation[];
  faults: Record<string, number>;
  /** Faults the schedule asked for that had nothing to act on (restart of a live node...). */
  skipped: number;
  jobs: number;
  /** Time from the end of the faults to a leader, and to every job terminal (ms). */
  recovery: { leaderMs: number | null; allTerminalMs: number | null };
  durationMs: number;
  history: Transition[];
  records: JobRecord[];
  /** The tail of each node's log, for a failure report. */
  logs: string;
};

/** The true result of a job, when it has one the checker can compare. */
export function expectedResult(type: string, input: unknown): unknown {
  if (type === 'primes') return { count: countPrimes((input as { limit: number }).limit) };
  if (type === 'sleep') return { sleptMs: (input as { ms: number }).ms };
  return undefined;
}

/** Outcomes a correct cluster may end a generated job with, beyond the history invariants. */
function outcomeViolations(jobs: ChaosJob[], records: Map<string, JobRecord>): Violation[] {
  const out: Violation[] = [];
  for (const j of jobs) {
    const r = records.get(j.id);
    if (!r) {
      out.push({ invariant: 'not-terminal', subject: j.id, message: `accepted job ${j.id} has no record`, events: [] });
      continue;
    }
    const allowed = j.kind === 'fail' ? ['failed'] : j.kind === 'cancel' ? ['cancelled', 'succeeded'] : ['succeeded'];
    if (isTerminal(r) && !allowed.includes(r.state)) {
      out.push({
        invariant: 'result-correct',
        subject: j.id,
        message: `job ${j.id} (${j.kind}) ended ${r.state}${r.error ? ` (${r.error})` : ''}; expected ${allowed.join(' or ')}`,
        events: [],
      });
    }
  }
  return out;
}

/**
 * How long after the faults end every job must be terminal: a lease TTL to
 * notice a dead owner, another for a leader, every job run again from its
 * checkpoint (at worst from zero), retry backoffs, and time for a restarted
 * cluster's streams to elect leaders.
 */
export function convergenceBoundMs(s: Schedule, leaseTtlMs: number): number {
  const jobMs = (j: ChaosJob) => (j.kind === 'primes' ? (j.limit / 10_000) * 100 : j.kind === 'fail' ? 500 : j.ms);
  const longest = Math.max(0, ...allJobs(s).map(jobMs));
  return 3 * leaseTtlMs + 2 * longest + retryBackoffMs(1) + retryBackoffMs(2) + 15_000;
}

type Progress = NonNullable<RunOptions['onProgress']>;

/** Play every step at its time; returns how many had nothing to act on. */
async function playFaults(c: ChaosCluster, schedule: Schedule, progress: Progress, log: (l: string) => void): Promise<number> {
  const t0 = Date.now();
  let skipped = 0;
  progress({ phase: 'faults', done: 0, total: schedule.steps.length });
  for (const [i, step] of schedule.steps.entries()) {
    const wait = t0 + step.at - Date.now();
    if (wait > 0) await sleep(wait);
    const f = step.fault;
    // With every node process dead nothing can accept a submit (a client would get "no responders"):
    // waiting out the retry budget would only stall the schedule.
    const act = f.kind === 'submit'
      ? async () => c.slots.some((s) => s.proc.running) && (await c.submit(f.jobs), true)
      : () => inject(c, f);
    const did = await act().catch((err) => {
      log(`fault '${describeStep(f)}' failed: ${(err as Error).message}`);
      return false;
    });
    if (!did) skipped++;
    log(`t=${Date.now() - t0}: ${describeStep(f)}${did ? '' : ' (nothing to do)'}`);
    progress({ phase: 'faults', done: i + 1, total: schedule.steps.length, detail: describeStep(f) });
  }
  // Let every timed fault run out (pauses end, partitions heal, servers come back).
  const end = t0 + faultsEndMs(schedule);
  if (end > Date.now()) await sleep(end - Date.now());
  await c.timeline.settle();
  return skipped;
}

/**
 * Stop the faults; they are over once the infrastructure is whole again: every
 * replicated bucket has a stream leader with current replicas (after a server
 * restart that election takes seconds, and no KV write succeeds meanwhile).
 * Returns that moment: the bounds on recovery count from it.
 */
async function stopFaults(c: ChaosCluster): Promise<number> {
  await endFaults(c);
  const n = c.names;
  // nats-server 2.10 can leave a restarted server's replica behind for good (as it can leave a server out of
  // the meta group at start, see harness/launcher.ts): one that stays behind this long is restarted once more.
  const behindSince = new Map<string, number>();
  await until(
    'every KV stream led, replicas current',
    async () => {
      const infos = await Promise.all(
        [n.leasesBucket, n.jobsBucket, n.checkpointsBucket].map((b) => c.buckets.jsm.streams.info(`KV_${b}`)),
      );
      const behind = new Set(infos.flatMap((i) => (i.cluster?.replicas ?? []).filter((r) => !r.current || r.offline).map((r) => r.name)));
      for (const name of behindSince.keys()) if (!behind.has(name)) behindSince.delete(name);
      for (const name of behind) {
        const since = behindSince.get(name) ?? Date.now();
        behindSince.set(name, since);
        const i = c.servers.findIndex((s) => s.name === name);
        if (c.cluster && i >= 0 && Date.now() - since > strayReplicaRestartMs) {
          c.options.log(`replica on ${name} still behind after ${strayReplicaRestartMs} ms: restarting it`);
          behindSince.delete(name);
          await c.cluster.restart(i);
        }
      }
      return behind.size === 0 && infos.every((i) => !i.cluster || !!i.cluster.leader);
    },
    60_000,
    100,
  );
  return Date.now();
}

/** Poll the records until every accepted job is terminal or the bound passes; returns when that was (ms after the faults ended), or null. */
async function converge(c: ChaosCluster, faultsEndedAt: number, boundMs: number, progress: Progress): Promise<number | null> {
  const store = new JobStore(c.buckets.jobs);
  let records: JobRecord[] = [];
  while (Date.now() < faultsEndedAt + boundMs) {
    records = await store.all().catch(() => records);
    const done = records.filter((r) => c.accepted.has(r.id) && isTerminal(r)).length;
    progress({ phase: 'converging', done, total: c.accepted.size, detail: `${done}/${c.accepted.size} jobs terminal` });
    if (done === c.accepted.size) return Date.now() - faultsEndedAt;
    await sleep(100);
  }
  return null;
}

export async function runSchedule(schedule: Schedule, options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const progress = options.onProgress ?? (() => {});
  progress({ phase: 'starting', done: 0, total: schedule.steps.length });
  let c: ChaosCluster | null = null;
  try {
    c = await ChaosCluster.start({ ...options, log }, (created) => (c = created));
    await c.submit(schedule.initial);
    const skipped = await playFaults(c, schedule, progress, log);
    progress({ phase: 'converging', done: schedule.steps.length, total: schedule.steps.length });
    const faultsEndedAt = await stopFaults(c);
    const allTerminalMs = await converge(c, faultsEndedAt, convergenceBoundMs(schedule, options.leaseTtlMs), progress);
    // The history must cover the whole window in which a leader has to show up (and at least one more
    // renewal), or the checker would judge a leader by a history cut short.
    const timing = leaseTiming(options.leaseTtlMs);
    const leaderWithinMs = timing.ttlMs + timing.pollIntervalMs;
    await sleep(Math.max(faultsEndedAt + leaderWithinMs, Date.now() + timing.renewIntervalMs) - Date.now());

    // Stop the nodes gracefully so every event they hold is published, then read the history.
    progress({ phase: 'checking', done: 0, total: 1 });
    const logs = c.logs();
    await Promise.all(c.slots.map((s) => s.proc.stop()));
    const records = await new JobStore(c.buckets.jobs).all();
    const history = [...(await readTransitions(c.nc, c.names)).map(({ streamSeq: _, ...t }) => t), ...c.observed];
    const jobs = allJobs(schedule).filter((j) => c!.accepted.has(j.id));
    const violations = [
      ...checkHistory(history, { records, expected: expectedResult, expectAllTerminal: true, faultsEndedAt, leaderWithinMs }),
      ...outcomeViolations(jobs, new Map(records.map((r) => [r.id, r]))),
    ];
    const leaderAt = leaderSeenAt(history, faultsEndedAt);
    progress({ phase: 'done', done: 1, total: 1 });
    return {
      schedule,
      violations,
      faults: countFaults(schedule),
      skipped,
      jobs: jobs.length,
      recovery: { leaderMs: leaderAt === null ? null : leaderAt - faultsEndedAt, allTerminalMs },
      durationMs: Date.now() - started,
      history,
      records,
      logs,
    };
  } finally {
    await (c as ChaosCluster | null)?.stop();
  }
}
