// What the leader and the API answer from a job index (one watch of every
// record) rather than by reading each record: the cluster's status, a wait for
// a job to finish; and what a submit decides about a job, shared by the API
// nodes (which check it) and the dispatcher (which stores it).
import { isTerminal, newJobRecord } from '../machines/job.machine.ts';
import { type JobRecord, jobStates, type ParsedRequestOf, type StatusReply } from '../api/contract.ts';
import type { Bucket } from '../store/bucket.ts';
import { defaults } from '../base/defaults.ts';
import { ApiError } from '../base/errors.ts';
import type { JobStore } from '../store/job.store.ts';
import { readCluster } from '../store/lease.records.ts';
import type { Clock } from '../base/time.ts';
import type { JobIndex } from './job.index.ts';
import { fairness } from '../policies/fairness.ts';
import type { IntakeItem } from '../nats/messages.ts';

export type IndexView = Pick<JobIndex, 'follow' | 'latest' | 'counts' | 'ready' | 'records' | 'page'>;

export const notFound = (id: string) => new ApiError(404, 'not_found', `no job with id '${id}'`);

type Spec = Pick<JobRecord, 'type' | 'input' | 'priority' | 'requires' | 'pendingTimeoutMs'>;
/**
 * What makes a resubmit the same job: its type, input, priority and placement. Not its attempts, timeout or
 * retention: those a job type's settings may fill in, and the node that answers a resubmit (a schedule's tick
 * sent again by a new leader) may know the type's settings differently; the stored job's stay.
 */
function specOf(r: Spec) {
  const { type, input, priority, requires, pendingTimeoutMs } = r;
  return JSON.stringify([type, input ?? null, priority, requires ?? null, pendingTimeoutMs ?? null]);
}

/** What a submit asks for, with every default filled in (`at`: when it was received). */
export function intakeItemOf(req: ParsedRequestOf<'jobs.submit'>, at: number): IntakeItem {
  return {
    id: req.id ?? crypto.randomUUID(),
    type: req.type,
    input: req.input ?? null,
    priority: req.priority ?? defaults.priority,
    maxAttempts: req.maxAttempts ?? defaults.maxAttempts,
    timeoutMs: req.timeoutMs ?? defaults.jobTimeoutMs,
    requires: req.requires && Object.keys(req.requires).length > 0 ? req.requires : null,
    pendingTimeoutMs: req.pendingTimeoutMs ?? null,
    retentionMs: req.retentionMs ?? null,
    notBefore: req.runAt ?? (req.delayMs !== undefined ? at + req.delayMs : 0),
    trace: req.trace ?? null,
    at,
  };
}

/** A new job's record, queued, from what its submit asked for. */
export const recordOfIntake = (item: IntakeItem): JobRecord => newJobRecord(item, item.at);

/** The same id with another body is 409; submit is idempotent only for the same body. */
export function sameSubmit(stored: JobRecord, item: IntakeItem): void {
  if (specOf(stored) !== specOf(recordOfIntake(item))) {
    throw new ApiError(409, 'conflict', `job '${item.id}' exists with a different body; submit is idempotent only for the same body`);
  }
}

/** Counts by state come from the node's job index (its watch of every record), not from reading each one. */
export async function statusFrom(leases: Bucket, index: IndexView, clock: Clock): Promise<StatusReply> {
  const view = await readCluster(leases);
  await index.ready();
  const jobs = Object.fromEntries(jobStates.map((s) => [s, index.counts[s]])) as StatusReply['jobs'];
  const fair = fairness(index.records(), view.nodes.map((x) => x.id), clock.now(), defaults.fairnessWindowMs);
  // Queued jobs no live node can take now, by reason (each record says its own).
  const pending = { total: 0, byReason: {} as Record<string, number> };
  for (const r of index.records()) {
    if (r.state !== 'queued' || !r.pendingReason) continue;
    pending.total++;
    pending.byReason[r.pendingReason] = (pending.byReason[r.pendingReason] ?? 0) + 1;
  }
  return { ...view, jobs, queueDepth: jobs.queued, pending, fairness: fair };
}

/** Waits this process holds open now (each a follower and a timer): at `defaults.waitsMax`, more are refused. */
let openWaits = 0;

/**
 * The record once it is terminal; 408 on timeout. Followed through the node's
 * one watch of the jobs bucket (its job index), never a watch per request.
 * At most `defaults.waitsMax` at once per process: beyond, 503 `busy`.
 */
export async function waitFor(store: JobStore, index: IndexView, clock: Clock, id: string, timeoutMs: number): Promise<JobRecord> {
  if (openWaits >= defaults.waitsMax) {
    throw new ApiError(503, 'busy', `${openWaits} waits are open on this node (the limit); try again, or poll with jobs.get`);
  }
  openWaits++;
  try {
    return await waitOpen(store, index, clock, id, timeoutMs);
  } finally {
    openWaits--;
  }
}

async function waitOpen(store: JobStore, index: IndexView, clock: Clock, id: string, timeoutMs: number): Promise<JobRecord> {
  let settle: (r: JobRecord | null) => void = () => {};
  const done = new Promise<JobRecord | null>((resolve) => (settle = resolve));
  // Follow first, then read: a write after the read reaches the follower.
  const unfollow = index.follow(id, (r) => isTerminal(r) && settle(r));
  const timer = clock.setTimeout(() => settle(null), timeoutMs);
  try {
    // The index has it when it is live or finished lately (terminal records never change, so that answer
    // is final); otherwise read it: the index may not have seen a job that was just created.
    const first = index.latest(id) ?? (await store.get(id))?.value;
    if (!first) throw notFound(id);
    if (isTerminal(first)) return first;
    const r = await done;
    if (r) return r;
    throw new ApiError(408, 'timeout', `job '${id}' not finished within ${timeoutMs} ms`);
  } finally {
    clock.clearTimeout(timer);
    unfollow();
  }
}
