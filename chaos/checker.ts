// The history checker: reads the events history (every machine transition
// and every job record write) plus the final job records, and reports each
// broken invariant with the job or epoch and the events that break it.
// Pure and runtime-neutral: the simulation and the real-process chaos runs use the same one.
import type { JobRecord } from '../machines/job.machine.ts';
import { isLeaderAction, type Transition } from '../streams/events.ts';

export type Violation = {
  invariant:
    | 'one-terminal-state'
    | 'result-kept'
    | 'result-correct'
    | 'fenced-writes'
    | 'resume-from-checkpoint'
    | 'one-leader-per-epoch'
    | 'epochs-increase'
    | 'stale-leader-acted'
    | 'not-terminal';
  /** The job id, or `epoch <n>`. */
  subject: string;
  message: string;
  events: Transition[];
};

export type CheckOptions = {
  /** Final records (from the jobs bucket); without them only the history is checked. */
  records?: JobRecord[];
  /** The true result for a job, when it can be computed (primes); undefined to skip. */
  expected?: (type: string, input: unknown) => unknown;
  /** After faults stopped and the bound passed: every job must be terminal. */
  expectAllTerminal?: boolean;
};

const terminal = (state: string) => state === 'succeeded' || state === 'failed' || state === 'cancelled';
/** Writes only the owner of the current attempt may make. */
const ownerWrites = new Set(['job.progress', 'job.phase', 'job.succeed', 'job.fail', 'job.timeout', 'job.preempt', 'job.checkpoint']);

function byTime(a: Transition, b: Transition): number {
  return a.wall - b.wall || (a.instance === b.instance ? a.seq - b.seq : 0);
}

export function checkHistory(history: Transition[], o: CheckOptions = {}): Violation[] {
  const out: Violation[] = [];
  const jobs = new Map<string, Transition[]>();
  for (const t of history) if (t.kind === 'job') jobs.set(t.actor, [...(jobs.get(t.actor) ?? []), t]);

  for (const [id, evs] of jobs) {
    evs.sort(byTime);
    const finals = evs.filter((t) => terminal(t.to.split('.')[0]!) && (t.from === null || !terminal(t.from.split('.')[0]!)));
    if (finals.length > 1) {
      out.push({ invariant: 'one-terminal-state', subject: id, message: `job ${id} reached a terminal state ${finals.length} times`, events: finals });
    }
    // Owner writes from an attempt older than one already started were not fenced.
    let started = 0;
    let bestCheckpoint = 0;
    let bestCheckpointEvent: Transition | null = null;
    for (const t of evs) {
      if (t.event === 'job.start') {
        const resumedFrom = Number(t.data?.resumedFrom ?? 0);
        if (resumedFrom + 1e-9 < bestCheckpoint && t.epoch! > (bestCheckpointEvent?.epoch ?? 0)) {
          out.push({
            invariant: 'resume-from-checkpoint', subject: id,
            message: `attempt ${t.epoch} of job ${id} resumed from ${resumedFrom}, below the committed checkpoint ${bestCheckpoint} of attempt ${bestCheckpointEvent!.epoch}`,
            events: [bestCheckpointEvent!, t],
          });
        }
        started = Math.max(started, t.epoch ?? 0);
      } else if (ownerWrites.has(t.event) && (t.epoch ?? 0) < started) {
        out.push({ invariant: 'fenced-writes', subject: id, message: `attempt ${t.epoch} of job ${id} wrote ${t.event} after attempt ${started} started`, events: [t] });
      }
      if (t.event === 'job.checkpoint') {
        const p = Number(t.data?.progress ?? 0);
        if (p > bestCheckpoint) {
          bestCheckpoint = p;
          bestCheckpointEvent = t;
        }
      }
    }
  }

  for (const r of o.records ?? []) {
    const evs = jobs.get(r.id) ?? [];
    const done = evs.find((t) => t.to === 'succeeded' && t.from !== 'succeeded');
    if (r.state === 'succeeded' && done && JSON.stringify(done.data?.result) !== JSON.stringify(r.result)) {
      out.push({ invariant: 'result-kept', subject: r.id, message: `job ${r.id}'s result changed after it succeeded: ${JSON.stringify(done.data?.result)} → ${JSON.stringify(r.result)}`, events: [done] });
    }
    const want = r.state === 'succeeded' ? o.expected?.(r.type, r.input) : undefined;
    if (want !== undefined && JSON.stringify(want) !== JSON.stringify(r.result)) {
      out.push({ invariant: 'result-correct', subject: r.id, message: `job ${r.id} (${r.type}) returned ${JSON.stringify(r.result)}, expected ${JSON.stringify(want)}`, events: done ? [done] : [] });
    }
    if (o.expectAllTerminal && !terminal(r.state)) {
      out.push({ invariant: 'not-terminal', subject: r.id, message: `job ${r.id} is still ${r.state} (attempt ${r.attempt}, owner ${r.owner})`, events: evs.slice(-3) });
    }
  }

  // Leadership: who led under which epoch, and when each began to act.
  const leading = history.filter((t) => t.kind === 'coordinator' && t.to.startsWith('active.leader') && t.epoch !== null).sort(byTime);
  const acts = leading.filter(isLeaderAction);
  const byEpoch = new Map<number, Transition[]>();
  for (const t of leading) byEpoch.set(t.epoch!, [...(byEpoch.get(t.epoch!) ?? []), t]);
  for (const [epoch, evs] of byEpoch) {
    const who = new Set(evs.map((t) => t.instance));
    if (who.size > 1) {
      out.push({ invariant: 'one-leader-per-epoch', subject: `epoch ${epoch}`, message: `${who.size} processes acted as leader under epoch ${epoch}: ${[...new Set(evs.map((t) => t.node))].join(', ')}`, events: evs });
    }
  }
  const firstActs = [...byEpoch.entries()].map(([epoch, evs]) => ({ epoch, first: evs[0]! })).sort((a, b) => byTime(a.first, b.first));
  for (let i = 1; i < firstActs.length; i++) {
    if (firstActs[i]!.epoch < firstActs[i - 1]!.epoch) {
      out.push({ invariant: 'epochs-increase', subject: `epoch ${firstActs[i]!.epoch}`, message: `epoch ${firstActs[i]!.epoch} started acting after epoch ${firstActs[i - 1]!.epoch}`, events: [firstActs[i - 1]!.first, firstActs[i]!.first] });
    }
  }
  for (const t of acts) {
    const newer = firstActs.find((f) => f.epoch > t.epoch! && f.first.wall < t.wall);
    if (newer) {
      out.push({ invariant: 'stale-leader-acted', subject: `epoch ${t.epoch}`, message: `${t.node} acted under epoch ${t.epoch} after epoch ${newer.epoch} began (${t.wall - newer.first.wall} ms later)`, events: [newer.first, t] });
    }
  }
  return out;
}
