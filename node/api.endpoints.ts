// The public API's endpoints (served by every node): request schemas and
// what each does. Errors: 400 bad request, 404 unknown id, 408 wait timeout,
// 409 same id with a different body, 413 too large, 503 not ready.
import { isTerminal, newJobRecord } from '../machines/job.machine.ts';
import type { JobRecord } from '../api/contract.ts';
import { type Endpoint, endpoint } from '../nats/service.ts';
import { type EndpointName, jobStates, type ParsedRequestOf, type StatusReply } from '../api/contract.ts';
import type { Bucket } from '../store/bucket.ts';
import { defaults } from '../base/defaults.ts';
import { ApiError } from '../base/errors.ts';
import type { JobStore } from '../store/job.store.ts';
import { readCluster } from '../store/lease.records.ts';
import type { Notify } from '../nats/placement.ts';
import { type Clock, realClock } from '../base/time.ts';
import type { JobIndex } from './job.index.ts';
import { fairness } from '../policies/fairness.ts';

/** The endpoints' port: buckets, notifications and time; no NATS connection, so the simulation serves the same code. */
export type ApiDeps = {
  /** Throws a 503 until the node has bootstrapped. */
  kv: () => { leases: Bucket; jobs: Bucket; store: JobStore; index: Pick<JobIndex, 'follow' | 'latest' | 'counts' | 'ready' | 'records'> };
  /** Core NATS in a node process, the simulated network in the simulation. */
  notify: Notify;
  /** The node serving these endpoints: a drain request for it drains it. */
  self: { id: string; drain: () => void };
  /** The problems with a submit's input for its type (null: it fits, or the type has no schema). */
  checkInput?: (type: string, input: unknown) => Promise<string[] | null>;
  clock?: Clock;
};

const notFound = (id: string) => new ApiError(404, 'not_found', `no job with id '${id}'`);

function specOf(r: Pick<JobRecord, 'type' | 'input' | 'priority' | 'maxAttempts' | 'timeoutMs' | 'requires' | 'pendingTimeoutMs'>) {
  return JSON.stringify([r.type, r.input ?? null, r.priority, r.maxAttempts, r.timeoutMs, r.requires ?? null, r.pendingTimeoutMs ?? null]);
}

/** Every endpoint, by the subject suffix it answers on (`shoal.api.<name>`). */
export function apiEndpoints(deps: ApiDeps): Record<EndpointName, Endpoint> {
  const clock = deps.clock ?? realClock;
  return {
    status: endpoint('status', () => status(deps, clock)),
    'jobs.submit': endpoint('jobs.submit', (req) => submit(deps, clock, req)),
    'jobs.get': endpoint('jobs.get', async (req) => {
      const r = await deps.kv().store.get(req.id);
      if (!r) throw notFound(req.id);
      return r.value;
    }, { everyNode: true }),
    'jobs.list': endpoint('jobs.list', (req) => list(deps, req)),
    'jobs.wait': endpoint('jobs.wait', (req) => wait(deps, clock, req), { everyNode: true }),
    'jobs.cancel': endpoint('jobs.cancel', (req) => cancel(deps, clock, req.id)),
    // Every node hears it; the named node drains itself and answers, so no node ever tells another to drain
    // (a node's permissions may not: see nats/roles.ts). For an id that is not live every node answers 404.
    'nodes.drain': endpoint('nodes.drain', async (req) => {
      if (req.id === deps.self.id) {
        deps.self.drain();
        return { id: req.id, draining: true };
      }
      // A bystander answers only a certain 404; anything else (still starting, a slow read) leaves it to the named node.
      const elsewhere = new ApiError(503, 'elsewhere', `node '${req.id}' answers for itself`);
      const view = await readCluster(deps.kv().leases).catch(() => null);
      if (view && !view.nodes.some((x) => x.id === req.id)) throw new ApiError(404, 'not_found', `no live node with id '${req.id}'`);
      throw elsewhere;
    }, { everyNode: true }),
  };
}

/** Counts by state come from the node's job index (its watch of every record), not from reading each one. */
async function status(deps: ApiDeps, clock: Clock): Promise<StatusReply> {
  const { leases, index } = deps.kv();
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

/** Idempotent by id: the same id and body returns the stored job, another body is 409. */
async function submit(deps: ApiDeps, clock: Clock, req: ParsedRequestOf<'jobs.submit'>) {
  const inputBytes = JSON.stringify(req.input ?? null).length;
  if (inputBytes > defaults.jobInputMaxBytes) {
    throw new ApiError(413, 'too_large', `input is ${inputBytes} bytes of JSON; the limit is ${defaults.jobInputMaxBytes}`);
  }
  const problems = await deps.checkInput?.(req.type, req.input ?? null);
  if (problems) {
    throw new ApiError(400, 'bad_input', `input does not match job type '${req.type}': ${problems.slice(0, 5).join('; ')}`);
  }
  const record = newJobRecord({
    id: req.id ?? crypto.randomUUID(),
    type: req.type,
    input: req.input ?? null,
    priority: req.priority ?? defaults.priority,
    maxAttempts: req.maxAttempts ?? defaults.maxAttempts,
    timeoutMs: req.timeoutMs ?? defaults.jobTimeoutMs,
    requires: req.requires && Object.keys(req.requires).length > 0 ? req.requires : null,
    pendingTimeoutMs: req.pendingTimeoutMs ?? null,
  }, clock.now());
  const { created, record: stored } = await deps.kv().store.create(record);
  if (!created && specOf(stored) !== specOf(record)) {
    throw new ApiError(409, 'conflict', `job '${record.id}' exists with a different body; submit is idempotent only for the same body`);
  }
  if (created) deps.notify.queued();
  return { id: stored.id, state: stored.state, created };
}

/** Oldest first; `cursor` is the offset of the next page. */
async function list(deps: ApiDeps, req: ParsedRequestOf<'jobs.list'>) {
  const all = (await deps.kv().store.all())
    .filter((r) => !req.state || r.state === req.state)
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  const from = Number(req.cursor ?? 0);
  const limit = req.limit ?? defaults.listLimit;
  const jobs = all.slice(from, from + limit);
  return from + limit < all.length ? { jobs, cursor: String(from + limit) } : { jobs };
}

/**
 * The record once it is terminal; 408 on timeout. Followed through the node's
 * one watch of the jobs bucket (its job index), never a watch per request.
 */
async function wait(deps: ApiDeps, clock: Clock, req: ParsedRequestOf<'jobs.wait'>) {
  const timeoutMs = req.timeoutMs ?? defaults.waitTimeoutMs;
  const { store, index } = deps.kv();
  let settle: (r: JobRecord | null) => void = () => {};
  const done = new Promise<JobRecord | null>((resolve) => (settle = resolve));
  // Follow first, then read: a write after the read reaches the follower.
  const unfollow = index.follow(req.id, (r) => isTerminal(r) && settle(r));
  const timer = clock.setTimeout(() => settle(null), timeoutMs);
  try {
    // The index has it when it is live or finished lately (terminal records never change, so that answer
    // is final); otherwise read it: the index may not have seen a job that was just created.
    const first = index.latest(req.id) ?? (await store.get(req.id))?.value;
    if (!first) throw notFound(req.id);
    if (isTerminal(first)) return first;
    const r = await done;
    if (r) return r;
    throw new ApiError(408, 'timeout', `job '${req.id}' not finished within ${timeoutMs} ms`);
  } finally {
    clock.clearTimeout(timer);
    unfollow();
  }
}

/** Cancel by CAS (a finished job is left alone), then tell the owner to stop its handler. */
async function cancel(deps: ApiDeps, clock: Clock, id: string) {
  const before = await deps.kv().store.get(id);
  if (!before) throw notFound(id);
  const done = await deps.kv().store.apply(id, () => ({ type: 'job.cancel', at: clock.now() }));
  if (!done) throw notFound(id);
  const owner = before.value.owner;
  if (done.changed && owner) deps.notify.cancel(owner, [id]);
  return { id, state: done.record.state, cancelled: done.changed };
}
