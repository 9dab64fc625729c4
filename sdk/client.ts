// `shoal/client`: submit jobs and follow them from any application, over the
// public NATS API (docs/api.md) that every node serves. It needs the NATS
// client and zod only. Calls that are safe to repeat (reads, waits, a submit
// that names its id) are retried in short attempts, so a request lost with a
// node that just died costs one attempt; waits go in slices, so no single
// request outlives a node.
import { type NatsConnection, TimeoutError } from '@nats-io/transport-node';
import {
  type EndpointName,
  type JobRecord,
  type JobStateName,
  type ReplyOf,
  type RequestOf,
  type Schedule,
  type StatusReply,
  terminalStates,
} from '../api/contract.ts';
import { defaults } from '../base/defaults.ts';
import { ApiError } from '../base/errors.ts';
import { sleep } from '../base/time.ts';
import { callApi } from '../nats/client.ts';
import { connectNats } from '../nats/connect.ts';
import { type Names, names } from '../nats/subjects.ts';
import { connectionFlags, type ConnectOptions } from './connection.ts';
import { activeTrace } from '../node/tracing.ts';
import { badInput, withTypeSettings } from '../node/input.schemas.ts';
import { JobCancelledError, JobFailedError } from './errors.ts';
import { type AnyJobDefinition, type InputOfJob, parseInput, type ResultOfJob, settingsOf } from './job.ts';

export { ApiError } from '../base/errors.ts';
export { JobCancelledError, JobFailedError } from './errors.ts';
export type { AttemptEntry, JobPhase, JobRecord, JobStateName, Requirements, Schedule, StatusReply } from '../api/contract.ts';
export type { ConnectOptions } from './connection.ts';
export type { InputOfJob, JobDefinition, ResultOfJob } from './job.ts';

export type ClientOptions = ConnectOptions & {
  /** Bound on each call but waits (ms). @default 5000 */
  timeoutMs?: number;
  /** Use this connection instead of opening one (`close()` then leaves it open). */
  connection?: NatsConnection;
};

/** A submit's options: everything `jobs.submit` takes besides type and input. */
export type SubmitOptions = Omit<RequestOf<'jobs.submit'>, 'type' | 'input'>;

/** What `job.progress()` yields: the job as it moves. */
export type JobProgress = { state: JobStateName; progress: number; attempt: number; phase: JobRecord['phase']; owner: string | null };

export async function createClient(options: ClientOptions = {}): Promise<Client> {
  const own = options.connection === undefined;
  const nc = options.connection ?? await connectNats(connectionFlags(options), 'shoal-client');
  return new Client(nc, names(options.prefix), { timeoutMs: options.timeoutMs ?? defaults.apiTimeoutMs, own });
}

export class Client {
  /** The NATS connection it calls over. */
  readonly connection: NatsConnection;
  readonly #n: Names;
  readonly #timeoutMs: number;
  readonly #own: boolean;

  constructor(nc: NatsConnection, n: Names, o: { timeoutMs: number; own: boolean }) {
    this.connection = nc;
    this.#n = n;
    this.#timeoutMs = o.timeoutMs;
    this.#own = o.own;
  }

  /** Call any endpoint of the API as it is on the wire (`status`, `jobs.get`, …). */
  call<E extends EndpointName>(endpoint: E, body?: RequestOf<E>, timeoutMs?: number): Promise<ReplyOf<E>> {
    return callApi(this.connection, this.#n, endpoint, body, timeoutMs ?? this.#timeoutMs);
  }

  /**
   * Submit a job of a defined type (typed input and result; its input checked here first, its retry and timeout
   * as defaults) or of a type by name. Resolves once the job is stored (queued, or placed at once).
   */
  submit<D extends AnyJobDefinition>(
    job: D,
    ...args: undefined extends InputOfJob<D> ? [input?: InputOfJob<D>, options?: SubmitOptions]
      : [input: InputOfJob<D>, options?: SubmitOptions]
  ): Promise<JobHandle<ResultOfJob<D>>>;
  submit<R = unknown>(type: string, input?: unknown, options?: SubmitOptions): Promise<JobHandle<R>>;
  async submit(job: string | AnyJobDefinition, input?: unknown, options: SubmitOptions = {}): Promise<JobHandle<unknown>> {
    let body: RequestOf<'jobs.submit'>;
    if (typeof job === 'string') {
      body = { ...options, type: job, ...(input !== undefined ? { input } : {}) };
    } else {
      const parsed = await parseInput(job, input);
      if ('problems' in parsed) throw badInput(job.type, parsed.problems);
      body = withTypeSettings({ ...options, type: job.type, ...(input !== undefined ? { input } : {}) }, settingsOf(job));
    }
    const trace = body.trace ?? (await activeTrace());
    const r = await this.call('jobs.submit', trace ? { ...body, trace } : body);
    return new JobHandle(this, r.id, r.created);
  }

  /** A handle on a job by id (nothing is asked until you call it). */
  job<R = unknown>(id: string): JobHandle<R> {
    return new JobHandle<R>(this, id, false);
  }

  /** A job's record; 404 (ApiError) when no such job. */
  get(id: string): Promise<JobRecord> {
    return this.call('jobs.get', { id });
  }

  /** One page of jobs (of a state, a type, created since; oldest first unless `order: 'newest'`); pass the reply's `cursor` for the next. */
  list(filter: RequestOf<'jobs.list'> = {}): Promise<ReplyOf<'jobs.list'>> {
    return this.call('jobs.list', filter);
  }

  /** Every job (of a state), page by page. */
  async *jobs(filter: Omit<RequestOf<'jobs.list'>, 'cursor'> = {}): AsyncGenerator<JobRecord> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ ...filter, ...(cursor ? { cursor } : {}) });
      yield* page.jobs;
      cursor = page.cursor;
    } while (cursor);
  }

  /** Cancel a job: a running handler's signal aborts; a finished job stays as it ended (`cancelled: false`). */
  cancel(id: string): Promise<ReplyOf<'jobs.cancel'>> {
    return this.call('jobs.cancel', { id });
  }

  /**
   * Run a failed or cancelled job again: a new job `<id>-r<n>` with its type, input and options (the old record
   * stays as it ended). Retrying the same job again answers the same new job (`created: false`); 409 for a job
   * that has not failed or been cancelled.
   */
  async retry<R = unknown>(id: string): Promise<JobHandle<R>> {
    const r = await this.call('jobs.retry', { id });
    return new JobHandle<R>(this, r.id, r.created);
  }

  /**
   * A recurring job: `cron` (five fields, or six with seconds; `@daily` …) read in `timezone` (default UTC); each
   * tick submits `job` (a type and input, with submit options) as the job `<name>-<tick ms>`, exactly once per
   * tick. 409 when the name is taken, unless `replace`.
   */
  addSchedule(spec: RequestOf<'schedules.add'>): Promise<Schedule> {
    return this.call('schedules.add', spec);
  }

  /** Every schedule, with its last and next tick. */
  async schedules(): Promise<Schedule[]> {
    return (await this.call('schedules.list')).schedules;
  }

  pauseSchedule(name: string): Promise<Schedule> {
    return this.call('schedules.pause', { name });
  }

  /** Ticks that passed while it was paused are not submitted. */
  resumeSchedule(name: string): Promise<Schedule> {
    return this.call('schedules.resume', { name });
  }

  async removeSchedule(name: string): Promise<boolean> {
    return (await this.call('schedules.remove', { name })).removed;
  }

  /** The cluster: its leader, live nodes, job counts. */
  status(): Promise<StatusReply> {
    return this.call('status');
  }

  /** Close the connection (unless it was given to `createClient`). */
  async close(): Promise<void> {
    if (this.#own) await this.connection.drain().catch(() => this.connection.close());
  }
}

/** A submitted job. */
export class JobHandle<R = unknown> {
  readonly id: string;
  /** False when a submit with this id found the job already there (an idempotent resubmit). */
  readonly created: boolean;
  readonly #client: Client;

  constructor(client: Client, id: string, created: boolean) {
    this.#client = client;
    this.id = id;
    this.created = created;
  }

  get(): Promise<JobRecord> {
    return this.#client.get(this.id);
  }

  cancel(): Promise<ReplyOf<'jobs.cancel'>> {
    return this.#client.cancel(this.id);
  }

  /**
   * The record once the job has finished, however it ended. Waits as long as it takes unless `timeoutMs` is given
   * (then an ApiError with status 408 and code 'timeout').
   */
  async wait(options: { timeoutMs?: number } = {}): Promise<JobRecord> {
    const until = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    for (;;) {
      const slice = Math.min(until - Date.now(), defaults.clientWaitSliceMs);
      if (slice <= 0) throw new ApiError(408, 'timeout', `job '${this.id}' not finished within ${options.timeoutMs} ms`);
      try {
        return await this.#client.call('jobs.wait', { id: this.id, timeoutMs: Math.ceil(slice) }, slice + defaults.apiTimeoutMs);
      } catch (err) {
        if (err instanceof ApiError && err.status === 408) continue;
        // No node answers for a moment (a leader handing over, a rolling restart), or the one asked died mid-slice:
        // ask again, within the bound.
        if (isTransient(err) && until - Date.now() > defaults.clientNoNodesRetryMs) await sleep(defaults.clientNoNodesRetryMs);
        else throw err;
      }
    }
  }

  /** The result once the job has succeeded; rejects with JobFailedError or JobCancelledError (carrying the record). */
  async result(options: { timeoutMs?: number } = {}): Promise<R> {
    const r = await this.wait(options);
    if (r.state === 'succeeded') return r.result as R;
    if (r.state === 'cancelled') throw new JobCancelledError(r);
    throw new JobFailedError(r);
  }

  /**
   * The job as it moves (state, progress 0..1, attempt, phase, owner): one item per change, asked every
   * `intervalMs`; ends after the job has finished (its last item is the final state).
   */
  async *progress(options: { intervalMs?: number } = {}): AsyncGenerator<JobProgress> {
    let last = '';
    for (;;) {
      const r = await this.get().catch(async (err) => {
        if (!isTransient(err)) throw err;
        await sleep(defaults.clientNoNodesRetryMs); // a leader handing over: ask again
        return null;
      });
      if (r === null) continue;
      const p: JobProgress = { state: r.state, progress: r.progress, attempt: r.attempt, phase: r.phase, owner: r.owner };
      const key = JSON.stringify(p);
      if (key !== last) yield p;
      last = key;
      if ((terminalStates as readonly string[]).includes(r.state)) return;
      await sleep(options.intervalMs ?? defaults.progressPollMs);
    }
  }
}

/** Worth asking again: no node answered (a leader handing over), or no answer in time (the one asked died). */
const isTransient = (err: unknown) => (err instanceof ApiError && err.code === 'no_nodes') || err instanceof TimeoutError;
