// One real-process chaos run: a nats-server (or a 3-server JetStream cluster),
// N node processes each behind its own TCP proxies, a fault schedule played
// against them, then convergence and the history checker. Everything it
// starts is stopped and removed before it returns, whatever happened.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { countPrimes } from '../../actors/handlers.ts';
import { spawnNode, type NodeProcess } from '../../harness/spawn.ts';
import { isTerminal, type JobRecord } from '../../machines/job.machine.ts';
import { natsBucket } from '../../streams/bucket.ts';
import { callApi } from '../../streams/client.ts';
import { leaseTiming } from '../../machines/lease.rules.ts';
import { retryBackoffMs } from '../../streams/defaults.ts';
import { readTransitions, type Transition } from '../../streams/events.ts';
import { JobStore } from '../../streams/job.store.ts';
import { startCluster, startServer, type NatsServer, type ServerOptions } from '../../harness/launcher.ts';
import { readLease } from '../../streams/lease.records.ts';
import { keys, names } from '../../streams/subjects.ts';
import { allowOldServerEnv } from '../../streams/version.ts';
import { sleep, until } from '../../streams/time.ts';
import { checkHistory, leaderSeenAt, type Violation } from '../checker.ts';
import { allJobs, countFaults, describeFault, faultsEndMs, type ChaosJob, type Fault, type Schedule } from './schedule.ts';
import { TcpProxy } from './proxy.ts';

export type RunOptions = {
  nodes: number;
  servers: 1 | 3;
  leaseTtlMs: number;
  /** A nats-server binary other than the default (the 2.9.10 test). */
  serverBin?: string;
  /** Let nodes run on a server older than 2.10 (only for the test that shows why Shoal refuses it). */
  allowOldServer?: boolean;
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

/** The API request that submits a generated job. */
function submitBody(j: ChaosJob): Record<string, unknown> {
  switch (j.kind) {
    case 'primes': return { id: j.id, type: 'primes', input: { limit: j.limit, chunk: 10_000, pauseMs: 60 } };
    case 'sleep': return { id: j.id, type: 'sleep', input: { ms: j.ms } };
    case 'fail': return { id: j.id, type: 'exec', input: { cmd: 'sh', args: ['-c', 'exit 3'] }, maxAttempts: 2 };
    case 'cancel': return { id: j.id, type: 'sleep', input: { ms: j.ms } };
  }
}

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
        invariant: 'result-correct', subject: j.id,
        message: `job ${j.id} (${j.kind}) ended ${r.state}${r.error ? ` (${r.error})` : ''}; expected ${allowed.join(' or ')}`, events: [],
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

type Slot = { id: string; proc: NodeProcess; proxies: TcpProxy[] };

export async function runSchedule(schedule: Schedule, o: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const log = o.log ?? (() => {});
  const progress = o.onProgress ?? (() => {});
  const n = names();
  const serverOpts: ServerOptions = { bin: o.serverBin, allowOld: o.allowOldServer };
  progress({ phase: 'starting', done: 0, total: schedule.steps.length });

  const cluster = o.servers === 3 ? await startCluster({ ...serverOpts, size: 3 }) : null;
  const single = cluster ? null : await startServer(serverOpts);
  const servers: NatsServer[] = cluster ? cluster.servers : [single!];
  const slots: Slot[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const pendingUndos = new Set<Promise<unknown>>();
  let nc: NatsConnection | null = null;
  let skipped = 0;

  const spawn = (slot: Omit<Slot, 'proc'>): NodeProcess => spawnNode({
    id: slot.id, nats: slot.proxies.map((p) => p.url).join(','), leaseTtlMs: o.leaseTtlMs, replicas: o.servers, slots: 4,
    args: ['--no-discovery'],
    env: o.allowOldServer ? { [allowOldServerEnv]: '1' } : undefined,
  });

  try {
    for (let i = 0; i < o.nodes; i++) {
      const proxies = await Promise.all(servers.map((s) => TcpProxy.start({ port: s.port })));
      const slot = { id: `n${i + 1}`, proxies };
      slots.push({ ...slot, proc: spawn(slot) });
    }
    nc = await connect({ servers: servers.map((s) => s.url), maxReconnectAttempts: -1, reconnectTimeWait: 100, pingInterval: 2_000 });
    await until('a leader and every node ready', async () => {
      const s = await callApi<{ leader: unknown; nodes: Array<{ state: string }> }>(nc!, n, 'status', {}, 2_000);
      return s.leader !== null && s.nodes.length === o.nodes && s.nodes.every((x) => x.state === 'ready');
    }, 90_000, 100).catch((err: Error) => {
      throw new Error(`${err.message}\n${logsOf(slots)}`);
    });
    const js = jetstream(nc, { timeout: 5_000 });
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    const kvm = new Kvm(js);
    const leases = natsBucket(await kvm.open(n.leasesBucket), n.leasesBucket);
    const jobsKv = natsBucket(await kvm.open(n.jobsBucket), n.jobsBucket);

    const accepted = new Set<string>();
    const submit = async (jobs: ChaosJob[]) => {
      await Promise.all(jobs.map(async (j) => {
        // Idempotent by id: retry until some node answers (nodes may be dead, cut off or between leaders).
        await until(`submit of ${j.id}`, () => callApi(nc!, n, 'jobs.submit', submitBody(j), 2_000), 60_000, 100);
        accepted.add(j.id);
        if (j.kind === 'cancel') later(j.afterMs, () => until(`cancel of ${j.id}`, () => callApi(nc!, n, 'jobs.cancel', { id: j.id }, 2_000), 60_000, 100));
      }));
    };
    const later = (ms: number, fn: () => Promise<unknown> | void) => {
      const t = setTimeout(() => {
        timers.delete(t);
        const p = Promise.resolve().then(fn).catch((err) => log(`deferred step failed: ${(err as Error).message}`));
        pendingUndos.add(p);
        void p.finally(() => pendingUndos.delete(p));
      }, ms);
      timers.add(t);
    };

    const leaderSlot = async () => {
      const l = await readLease(leases, keys.leader).catch(() => null);
      return slots.find((x) => x.id === l?.value.holder.id && x.proc.running) ?? null;
    };

    await submit(schedule.initial);
    const t0 = Date.now();
    let downServers = 0;
    const inject = async (f: Fault): Promise<boolean> => {
      switch (f.kind) {
        case 'kill-node': {
          const s = slots[f.node]!;
          if (!s.proc.running) return false;
          await s.proc.kill();
          return true;
        }
        case 'kill-leader': {
          const s = await leaderSlot();
          if (!s) return false;
          await s.proc.kill();
          return true;
        }
        case 'partition-leader': {
          const s = await leaderSlot();
          if (!s) return false;
          s.proxies.forEach((p) => p.cut(f.mode));
          later(f.ms, () => s.proxies.forEach((p) => p.heal()));
          return true;
        }
        case 'restart-node': {
          const s = slots[f.node]!;
          if (s.proc.running) return false;
          s.proc = spawn(s);
          return true;
        }
        case 'pause-node': {
          const s = slots[f.node]!;
          if (!s.proc.running) return false;
          const proc = s.proc;
          proc.pause();
          later(f.ms, () => proc.resume());
          return true;
        }
        case 'kill-server': {
          if (!cluster || downServers > 0) return false;
          downServers++;
          await cluster.kill(f.server);
          later(f.ms, async () => {
            await cluster.restart(f.server);
            downServers--;
          });
          return true;
        }
        case 'partition': {
          const s = slots[f.node]!;
          s.proxies.forEach((p) => p.cut(f.mode));
          later(f.ms, () => s.proxies.forEach((p) => p.heal()));
          return true;
        }
        case 'latency': {
          const s = slots[f.node]!;
          s.proxies.forEach((p) => p.setLatency(f.delayMs));
          later(f.ms, () => s.proxies.forEach((p) => p.setLatency(0)));
          return true;
        }
        case 'submit':
          // With every node process dead nothing can accept it (a client would get "no responders"):
          // waiting out the retry budget would only stall the schedule.
          if (!slots.some((s) => s.proc.running)) return false;
          await submit(f.jobs);
          return true;
      }
    };

    progress({ phase: 'faults', done: 0, total: schedule.steps.length });
    for (const [i, step] of schedule.steps.entries()) {
      const wait = t0 + step.at - Date.now();
      if (wait > 0) await sleep(wait);
      const did = await inject(step.fault).catch((err) => {
        log(`fault '${describeFault(step.fault)}' failed: ${(err as Error).message}`);
        return false;
      });
      if (!did) skipped++;
      log(`t=${Date.now() - t0}: ${describeFault(step.fault)}${did ? '' : ' (nothing to do)'}`);
      progress({ phase: 'faults', done: i + 1, total: schedule.steps.length, detail: describeFault(step.fault) });
    }
    // Let every timed fault run out (pauses end, partitions heal, servers come back).
    const end = t0 + faultsEndMs(schedule);
    if (end > Date.now()) await sleep(end - Date.now());
    while (timers.size > 0 || pendingUndos.size > 0) {
      await Promise.allSettled([...pendingUndos]);
      if (timers.size > 0) await sleep(50);
    }

    // Faults stop: like a supervisor, start every node that was killed, and make sure every server runs.
    progress({ phase: 'converging', done: schedule.steps.length, total: schedule.steps.length });
    for (const [i, s] of servers.entries()) if (!s.running) await (cluster ? cluster.restart(i) : s.restart());
    for (const s of slots) {
      s.proxies.forEach((p) => (p.heal(), p.setLatency(0)));
      s.proc.resume();
      if (!s.proc.running) s.proc = spawn(s);
    }
    // The faults are over once the infrastructure is whole again: every replicated bucket has a stream
    // leader with current replicas (after a server restart that election takes seconds, and no KV write
    // succeeds meanwhile). The bounds on recovery count from here.
    await until('every KV stream led, replicas current', async () => {
      const infos = await Promise.all([n.leasesBucket, n.jobsBucket, n.checkpointsBucket].map((b) => jsm.streams.info(`KV_${b}`)));
      return infos.every((i) => !i.cluster || (!!i.cluster.leader && (i.cluster.replicas ?? []).every((r) => r.current && !r.offline)));
    }, 60_000, 100);
    const faultsEndedAt = Date.now();
    const bound = convergenceBoundMs(schedule, o.leaseTtlMs);
    const store = new JobStore(jobsKv);
    let allTerminalMs: number | null = null;
    let records: JobRecord[] = [];
    const deadline = faultsEndedAt + bound;
    while (Date.now() < deadline) {
      records = await store.all().catch(() => records);
      const done = records.filter((r) => accepted.has(r.id) && isTerminal(r)).length;
      progress({ phase: 'converging', done, total: accepted.size, detail: `${done}/${accepted.size} jobs terminal` });
      if (done === accepted.size) {
        allTerminalMs = Date.now() - faultsEndedAt;
        break;
      }
      await sleep(100);
    }
    // The history must cover the whole window in which a leader has to show up (and at least one more
    // renewal), or the checker would judge a leader by a history cut short.
    const timing = leaseTiming(o.leaseTtlMs);
    const leaderWithinMs = timing.ttlMs + timing.pollIntervalMs;
    const covered = Math.max(faultsEndedAt + leaderWithinMs, Date.now() + timing.renewIntervalMs) - Date.now();
    await sleep(covered);

    // Stop the nodes gracefully so every event they hold is published, then read the history.
    progress({ phase: 'checking', done: 0, total: 1 });
    const logs = logsOf(slots);
    await Promise.all(slots.map((s) => s.proc.stop()));
    records = await store.all();
    const history = (await readTransitions(nc, n)).map(({ streamSeq: _, ...t }) => t);
    const byId = new Map(records.map((r) => [r.id, r]));
    const jobs = allJobs(schedule).filter((j) => accepted.has(j.id));
    const violations = [
      ...checkHistory(history, { records, expected: expectedResult, expectAllTerminal: true, faultsEndedAt, leaderWithinMs }),
      ...outcomeViolations(jobs, byId),
    ];
    const leaderAt = leaderSeenAt(history, faultsEndedAt);
    const leaderMs = leaderAt === null ? null : leaderAt - faultsEndedAt;
    progress({ phase: 'done', done: 1, total: 1 });
    return {
      schedule, violations, faults: countFaults(schedule), skipped, jobs: jobs.length,
      recovery: { leaderMs, allTerminalMs }, durationMs: Date.now() - started, history, records, logs,
    };
  } finally {
    timers.forEach(clearTimeout);
    await Promise.allSettled(slots.map((s) => s.proc.kill()));
    await Promise.allSettled(slots.flatMap((s) => s.proxies.map((p) => p.close())));
    await nc?.close().catch(() => {});
    if (cluster) await cluster.stop();
    if (single) await single[Symbol.asyncDispose]();
  }
}

function logsOf(slots: Slot[], lines = 40): string {
  return slots.map((s) => `--- ${s.id} (pid ${s.proc.pid})\n${s.proc.output().split('\n').slice(-lines).join('\n')}`).join('\n');
}
