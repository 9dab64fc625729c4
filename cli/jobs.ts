// `shoal submit | jobs | job | cancel | drain`: thin clients of the public API.
import type { JobStateName } from '../api/contract.ts';
import { readFileSync } from 'node:fs';
import Table from 'cli-table3';
import { InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import { isTerminal } from '../machines/job.machine.ts';
import type { JobRecord } from '../api/contract.ts';
import { describeRequirements } from '../policies/requirements.ts';
import { callApi } from '../nats/client.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Names } from '../nats/subjects.ts';
import { sleep } from '../base/time.ts';
import { type Common, print, withApi } from './client.ts';
import { exitCodes } from './exit.codes.ts';

/** `--input '{"a":1}'` or `--input @file.json`. */
export function parseInput(raw: string | undefined): unknown {
  if (raw === undefined) return undefined;
  const text = raw.startsWith('@') ? readFileSync(raw.slice(1), 'utf8') : raw;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`--input is not valid JSON: ${(err as Error).message}`);
  }
}

function summary(r: JobRecord): string {
  const res = r.state === 'succeeded' ? `result ${JSON.stringify(r.result)}` : r.error ? `error: ${r.error}` : '';
  return `${r.id}  ${r.state}  attempt ${r.attempt}  ${res}`;
}

export async function runSubmit(
  type: string,
  options: Common & {
    input?: string;
    priority?: number;
    id?: string;
    maxAttempts?: number;
    timeout?: number;
    memMb?: number;
    gpu?: number;
    label?: Record<string, string>;
    pendingTimeout?: number;
    delay?: number;
    at?: number;
    wait?: boolean;
    json?: boolean;
  },
): Promise<number> {
  return withApi(options, async (nc, n) => {
    const requires = { memMb: options.memMb, gpu: options.gpu, labels: options.label };
    const body = {
      type,
      input: parseInput(options.input),
      priority: options.priority,
      id: options.id,
      maxAttempts: options.maxAttempts,
      timeoutMs: options.timeout,
      requires: Object.values(requires).some((v) => v !== undefined) ? requires : undefined,
      pendingTimeoutMs: options.pendingTimeout,
      delayMs: options.delay,
      runAt: options.at,
    };
    const sub = await callApi(nc, n, 'jobs.submit', body);
    if (!options.wait) {
      print(options.json ? JSON.stringify(sub) : `${sub.id}  ${sub.state}${sub.created ? '' : '  (already submitted)'}`);
      return 0;
    }
    const bar = process.stderr.isTTY
      ? new cliProgress.SingleBar(
        { format: `${sub.id} [{bar}] {percentage}% | {state} | attempt {attempt}`, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      )
      : null;
    bar?.start(100, 0, { state: sub.state, attempt: 0 });
    let last: JobRecord | null = null;
    // Progress comes from the record; the answer from jobs.wait (a KV watch on the server side).
    const done = callApi(nc, n, 'jobs.wait', { id: sub.id, timeoutMs: 3_600_000 }, 3_600_000 + 5_000);
    let finished = false;
    void done.finally(() => (finished = true));
    while (!finished) {
      last = await callApi(nc, n, 'jobs.get', { id: sub.id }).catch(() => last);
      if (last) bar?.update(Math.round(last.progress * 100), { state: last.state, attempt: last.attempt });
      if (last && isTerminal(last)) break;
      await Promise.race([done.catch(() => {}), sleep(200)]);
    }
    const r = await done;
    bar?.update(Math.round(r.progress * 100), { state: r.state, attempt: r.attempt });
    bar?.stop();
    print(options.json ? JSON.stringify(r, null, 2) : summary(r));
    return r.state === 'succeeded' ? exitCodes.ok : exitCodes.jobFailed;
  });
}

type ListFlags = { state?: JobStateName; type?: string; since?: number; newest?: boolean; limit?: number };

/** Every job the flags select (at most `limit`), page by page. */
async function listAll(nc: NatsConnection, n: Names, options: ListFlags): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await callApi(nc, n, 'jobs.list', {
      state: options.state,
      type: options.type,
      since: options.since === undefined ? undefined : Date.now() - options.since,
      order: options.newest ? 'newest' : undefined,
      limit: Math.min(options.limit ?? 1000, 1000),
      cursor,
    });
    jobs.push(...page.jobs);
    cursor = page.cursor;
  } while (cursor && jobs.length < (options.limit ?? Infinity));
  return jobs.slice(0, options.limit ?? Infinity);
}

export async function runJobs(options: Common & ListFlags & { json?: boolean }): Promise<number> {
  return withApi(options, async (nc, n) => {
    const jobs = await listAll(nc, n, options);
    if (options.json) {
      print(JSON.stringify(jobs, null, 2));
      return 0;
    }
    const t = new Table({
      head: ['id', 'type', 'state', 'prio', 'attempt', 'owner', 'progress', 'result / error'],
      style: { head: [], border: [] },
    });
    for (const r of jobs) {
      const out = r.state === 'succeeded' ? JSON.stringify(r.result) : r.error ?? (r.pendingReason ? `waiting: ${r.pendingReason}` : '');
      t.push([r.id, r.type, r.state, r.priority, r.attempt, r.owner ?? '', `${Math.round(r.progress * 100)}%`, out.slice(0, 60)]);
    }
    print(jobs.length ? t.toString() : 'no jobs');
    return 0;
  });
}

export async function runJob(id: string, options: Common & { json?: boolean }): Promise<number> {
  return withApi(options, async (nc, n) => {
    const r = await callApi(nc, n, 'jobs.get', { id });
    if (options.json) {
      print(JSON.stringify(r, null, 2));
      return 0;
    }
    print(
      `${summary(r)}\ntype ${r.type}  priority ${r.priority}  progress ${Math.round(r.progress * 100)}%  input ${JSON.stringify(r.input)}`,
    );
    if (r.requires) print(`requires ${describeRequirements(r.requires)}`);
    if (r.pendingReason) {
      const since = r.pendingSince ? ` (since ${new Date(r.pendingSince).toISOString().slice(11, 19)})` : '';
      print(`waiting: ${r.pendingReason}${since}`);
    }
    if (r.preemptions) print(`preempted ${r.preemptions} time${r.preemptions === 1 ? '' : 's'}`);
    const t = new Table({
      head: ['attempt', 'node', 'assigned', 'started', 'ended', 'resumed from', 'outcome'],
      style: { head: [], border: [] },
    });
    const time = (ms: number | null) => (ms ? new Date(ms).toISOString().slice(11, 23) : '');
    for (const a of r.attempts) {
      t.push([
        a.attempt,
        a.node,
        time(a.assignedAt),
        time(a.startedAt),
        time(a.endedAt),
        `${Math.round(a.resumedFrom * 100)}%`,
        a.outcome ?? '',
      ]);
    }
    if (r.attempts.length) print(t.toString());
    return 0;
  });
}

export async function runCancel(id: string, options: Common & { json?: boolean }): Promise<number> {
  return withApi(options, async (nc, n) => {
    const r = await callApi(nc, n, 'jobs.cancel', { id });
    print(options.json ? JSON.stringify(r) : r.cancelled ? `${id} cancelled` : `${id} is ${r.state}; nothing to cancel`);
    return 0;
  });
}

/** `shoal retry ID`, or every job `--state failed|cancelled [--type T] [--since D]` selects: each again as a new job. */
export async function runRetry(id: string | undefined, options: Common & ListFlags & { json?: boolean }): Promise<number> {
  return withApi(options, async (nc, n) => {
    if (id === undefined && options.state === undefined) {
      throw new Error('give a job id, or --state failed (or cancelled) to retry every such job');
    }
    if (id !== undefined && (options.state || options.type || options.since !== undefined)) {
      throw new InvalidArgumentError('give a job id or --state/--type/--since, not both');
    }
    const ids = id !== undefined ? [id] : (await listAll(nc, n, options)).map((r) => r.id);
    const results = [];
    for (const x of ids) results.push(await callApi(nc, n, 'jobs.retry', { id: x }));
    if (options.json) print(JSON.stringify(results, null, 2));
    else if (results.length === 0) print('no jobs to retry');
    else for (const r of results) print(`${r.retryOf} → ${r.id}  ${r.state}${r.created ? '' : '  (retried before)'}`);
    return 0;
  });
}

export async function runDrain(id: string, options: Common & { json?: boolean }): Promise<number> {
  return withApi(options, async (nc, n) => {
    const r = await callApi(nc, n, 'nodes.drain', { id });
    print(options.json ? JSON.stringify(r) : `${id} draining: it hands its jobs back to the queue, steps down, and exits`);
    return 0;
  });
}
