// The public API's endpoints as a node serves them: what each does. Errors:
// 400 bad request, 404 unknown id, 408 wait timeout, 409 same id with a
// different body, 413 too large, 503 not ready. With `dispatch` placement a
// submit is checked here and stored by the dispatcher (forwarded in batches),
// and waits and status are the dispatcher's (node/leader/dispatcher.ts).
import type { EndpointName, ParsedRequestOf } from '../api/contract.ts';
import { isTerminal } from '../machines/job.machine.ts';
import { type Endpoint, endpoint } from '../nats/service.ts';
import type { Bucket } from '../store/bucket.ts';
import { defaults } from '../base/defaults.ts';
import { ApiError } from '../base/errors.ts';
import { CheckpointSlot, type JobStore } from '../store/job.store.ts';
import { readCluster } from '../store/lease.records.ts';
import { encode } from '../store/codec.ts';
import type { Notify } from '../nats/placement.ts';
import type { IntakeItem, IntakeResult } from '../nats/messages.ts';
import { type Clock, realClock } from '../base/time.ts';
import { badInput, type TypeCatalog, withTypeSettings } from './input.schemas.ts';
import { type IndexView, intakeItemOf, notFound, recordOfIntake, sameSubmit, statusFrom, waitFor } from './job.queries.ts';

/** The endpoints' port: buckets, notifications and time; no NATS connection, so the simulation serves the same code. */
export type ApiDeps = {
  /** Throws a 503 until the node has bootstrapped. */
  kv: () => { leases: Bucket; jobs: Bucket; checkpoints: Bucket; store: JobStore; index: () => IndexView };
  /** Core NATS in a node process, the simulated network in the simulation. */
  notify: Notify;
  /** `dispatch` placement: a submit's job goes to the dispatcher, which stores and places it. */
  intake?: (item: IntakeItem) => Promise<IntakeResult>;
  /** The node serving these endpoints: a drain request for it drains it. */
  self: { id: string; drain: () => void };
  /** Job types as a submit sees them: the problems with its input (null: it fits, or no schema) and the type's settings. */
  types?: TypeCatalog;
  clock?: Clock;
};

/**
 * The endpoints every node serves, by the subject suffix they answer on (`shoal.api.<name>`): all of them
 * without a dispatcher; with one, all but the reads (`status`, `jobs.get`, `jobs.wait`, `jobs.list`), which the
 * dispatcher and its standby serve from their job tables.
 */
export function apiEndpoints(deps: ApiDeps): Partial<Record<EndpointName, Endpoint>> {
  const clock = deps.clock ?? realClock;
  // Without a dispatcher every node answers gets and waits from its own watch (a request sent the moment a
  // node died is answered by the others); with one, a get is one read by whichever node has the request.
  return {
    ...(deps.intake ? {} : readEndpoints(deps, clock)),
    'jobs.submit': endpoint('jobs.submit', (req) => submit(deps, clock, req)),
    'jobs.cancel': endpoint('jobs.cancel', (req) => cancel(deps, clock, req.id)),
    'jobs.retry': endpoint('jobs.retry', (req) => retry(deps, clock, req.id)),
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

/**
 * The reads, answered from a job index: on every node without a dispatcher, by the dispatcher and its
 * standby with one (they hold the only indexes). Every node that serves them answers; the first reply wins,
 * so a request sent the moment one of them died is still answered.
 */
export function readEndpoints(
  deps: Pick<ApiDeps, 'kv'>,
  clock: Clock = realClock,
): Pick<Record<EndpointName, Endpoint>, 'status' | 'jobs.get' | 'jobs.wait' | 'jobs.list'> {
  return {
    'jobs.list': endpoint('jobs.list', (req) => list(deps, req)),
    status: endpoint('status', () => statusFrom(deps.kv().leases, deps.kv().index(), clock)),
    // A finished record never changes: from the index; a live one is read (the index may trail the bucket a moment).
    'jobs.get': endpoint('jobs.get', async (req) => {
      const known = deps.kv().index().latest(req.id);
      const r = known && isTerminal(known) ? known : (await deps.kv().store.get(req.id))?.value;
      if (!r) throw notFound(req.id);
      return r;
    }, { everyNode: true }),
    'jobs.wait': endpoint(
      'jobs.wait',
      (req) => waitFor(deps.kv().store, deps.kv().index(), clock, req.id, req.timeoutMs ?? defaults.waitTimeoutMs),
      { everyNode: true },
    ),
  };
}

/** Idempotent by id: the same id and body returns the stored job, another body is 409. */
async function submit(deps: ApiDeps, clock: Clock, req: ParsedRequestOf<'jobs.submit'>) {
  // Measured as stored (CBOR): a JSON measure would miss what JSON cannot show (Maps, Sets, typed arrays).
  let inputBytes: number;
  try {
    inputBytes = encode(req.input ?? null).length;
  } catch (err) {
    throw new ApiError(400, 'bad_request', `input cannot be stored: ${(err as Error).message}`);
  }
  if (inputBytes > defaults.jobInputMaxBytes) {
    throw new ApiError(413, 'too_large', `input is ${inputBytes} bytes encoded; the limit is ${defaults.jobInputMaxBytes}`);
  }
  const problems = await deps.types?.check(req.type, req.input ?? null);
  if (problems) throw badInput(req.type, problems);
  const item = intakeItemOf(withTypeSettings(req, (await deps.types?.settings(req.type)) ?? {}), clock.now());
  if (deps.intake) {
    const r = await deps.intake(item);
    if ('error' in r) throw new ApiError(r.error.status, r.error.code, r.error.message);
    return r;
  }
  const { created, record: stored } = await deps.kv().store.create(recordOfIntake(item));
  if (!created) sameSubmit(stored, item);
  if (created) deps.notify.queued();
  return { id: stored.id, state: stored.state, created };
}

/**
 * A page of jobs, oldest first: which ids from the job index (in memory), then only the page's records
 * (from the index when it holds them, else one read each). The cursor names the last job of the page, so
 * paging is stable while jobs come and go.
 */
async function list(deps: Pick<ApiDeps, 'kv'>, req: ParsedRequestOf<'jobs.list'>) {
  const index = deps.kv().index();
  await index.ready();
  const limit = req.limit ?? defaults.listLimit;
  const { ids, more } = index.page(
    { state: req.state, type: req.type, since: req.since, newest: req.order === 'newest' },
    cursorOf(req.cursor),
    limit,
  );
  const jobs = (await Promise.all(ids.map(async (id) => index.latest(id) ?? (await deps.kv().store.get(id))?.value)))
    .filter((r): r is NonNullable<typeof r> => r !== undefined && (!req.state || r.state === req.state));
  const last = jobs[jobs.length - 1];
  return more && last ? { jobs, cursor: `${last.createdAt}.${last.id}` } : { jobs };
}

const cursorOf = (c: string | undefined) => {
  if (!c) return null;
  const dot = c.indexOf('.');
  return { createdAt: Number(c.slice(0, dot)), id: c.slice(dot + 1) };
};

/** Cancel by CAS (a finished job is left alone), then tell the owner to stop its handler. */
/**
 * Run a failed or cancelled job again, as a new job `<id>-r<n>` (the next n) with its type, input and options:
 * a finished record never changes, so its result stays committed once. Idempotent: retrying the same job again
 * answers the same new job.
 */
async function retry(deps: ApiDeps, clock: Clock, id: string) {
  const r = (await deps.kv().store.get(id))?.value;
  if (!r) throw notFound(id);
  if (r.state !== 'failed' && r.state !== 'cancelled') {
    throw new ApiError(409, 'conflict', `job '${id}' is ${r.state}: only a failed or cancelled job is retried`);
  }
  const m = /^(.*)-r(\d+)$/.exec(id);
  const next = m ? `${m[1]}-r${Number(m[2]) + 1}` : `${id}-r1`;
  if (next.length > 128) throw new ApiError(400, 'bad_request', `job '${id}': a retry's id '${next}' would be over 128 characters`);
  const again = await submit(deps, clock, {
    id: next,
    type: r.type,
    ...(r.input !== null ? { input: r.input } : {}),
    priority: r.priority,
    maxAttempts: r.maxAttempts,
    timeoutMs: r.timeoutMs,
    ...(r.requires ? { requires: r.requires } : {}),
    ...(r.pendingTimeoutMs !== null ? { pendingTimeoutMs: r.pendingTimeoutMs } : {}),
    ...(r.retentionMs !== null ? { retentionMs: r.retentionMs } : {}),
  });
  return { ...again, retryOf: id };
}

async function cancel(deps: ApiDeps, clock: Clock, id: string) {
  const before = await deps.kv().store.get(id);
  if (!before) throw notFound(id);
  // A running attempt's checkpoints are refused from here on (fenced before the record says cancelled, so none lands after).
  if (before.value.state === 'running' || before.value.state === 'assigned') {
    await CheckpointSlot.fence(deps.kv().checkpoints, id, before.value.attempt);
  }
  const done = await deps.kv().store.apply(id, () => ({ type: 'job.cancel', at: clock.now() }));
  if (!done) throw notFound(id);
  const owner = before.value.owner;
  if (done.changed && owner) deps.notify.cancel(owner, [id]);
  return { id, state: done.record.state, cancelled: done.changed };
}
