// `shoal inspect`: a local web page that draws every actor of the cluster as
// its statechart (laid out by elkjs: assets.ts), live, with a timeline to travel back.
// The server reads the events stream (history, then live), the job records
// (a KV watch: the authority for a job's state, see records.ts), the nodes'
// inspection feed (it asks every node to sync every few seconds, which is
// also the feed's heartbeat) and the status API, and streams all of it to the
// page over server-sent events. Every asset comes from the package; the page
// asks no host but this one. `--replay FILE` opens a saved history instead.
import { inspectorDefaults } from './defaults.ts';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { requestAllowed } from './guard.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import type { ShoalInspectionEvent } from '../node/inspection.ts';
import type { JobRecord } from '../api/contract.ts';
import { callApi } from '../nats/client.ts';
import { decode } from '../store/codec.ts';
import { connectNats } from '../nats/connect.ts';
import { tailTransitions, type Transition, transitionSchema, transitionsOf } from '../nats/events.ts';
import { type Names, names } from '../nats/subjects.ts';
import type { ConnectionFlags } from '../nats/connect.ts';
import { parseDuration } from '../base/time.ts';
import { pageAssets } from './assets.ts';
import { actorKey, type ServerMessage, type ViolationMark } from './model.ts';
import { pageHtml } from './page/html.ts';
import { JobStates, watchRecords } from './records.ts';
import { type JobRow, jobRow, JobRows } from './jobs.ts';
import { type CredentialsRole, credentialsRole } from '../nats/probe.ts';

export type InspectOptions = ConnectionFlags & {
  prefix: string;
  port: number;
  host: string;
  open?: boolean;
  replay?: string;
  stately?: boolean;
  /** How far back the history starts (a duration: 15m, 2h). */
  history: string;
  keepFinished: string;
  /** DNS names besides localhost and IP literals that the page may be reached under. */
  allowHost?: string[];
};

/** What a replay file holds: a chaos failure file (real or simulated) or a plain array of transitions. */
function readReplay(file: string): { history: Transition[]; violations: ViolationMark[]; records: JobRecord[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read --replay ${file}: ${(err as Error).message}`, { cause: err });
  }
  const v = (Array.isArray(raw) ? { history: raw } : raw) as { history?: unknown; violations?: unknown; records?: JobRecord[] };
  const history = z.array(transitionSchema).safeParse(v.history);
  if (!history.success) {
    throw new Error(`${file} holds no event history (expected a chaos failure file, or a JSON array of events from 'shoal events --json')`);
  }
  const violations = (Array.isArray(v.violations) ? v.violations : []) as Array<
    { invariant: string; subject: string; message: string; events?: Transition[] }
  >;
  return {
    history: history.data,
    records: v.records ?? [],
    violations: violations.map((x) => ({
      invariant: x.invariant,
      subject: x.subject,
      message: x.message,
      at: x.events?.length ? Math.min(...x.events.map((e) => e.wall)) : null,
      actors: [...new Set((x.events ?? []).map((e) => actorKey(e)))],
    })),
  };
}

/** An inspection event without what the page does not draw: the context, the machine's definition, an event's payload. */
function slim(e: ShoalInspectionEvent): ShoalInspectionEvent {
  if (e.type === '@xstate.event') return { ...e, event: { type: (e.event as { type: string }).type } } as ShoalInspectionEvent;
  const { definition: _definition, ...rest } = e as ShoalInspectionEvent & { definition?: unknown };
  const snapshot = (e as { snapshot?: { value?: unknown } }).snapshot;
  return { ...rest, ...(snapshot ? { snapshot: { value: snapshot.value } } : {}) } as ShoalInspectionEvent;
}

/** Resolves once the page has read what was written (or has gone). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** A page reading the stream; `joining` while the current state is still being sent. */
type Client = { res: ServerResponse; joining: boolean };

function actionsAllowed(role: CredentialsRole): { enabled: boolean; why: string } {
  if (role.role === 'admin') return { enabled: true, why: "cancel and retry run with the inspector's admin credentials" };
  if (role.admin === null) return { enabled: false, why: 'no node has answered yet: cancel and retry wait for one' };
  return {
    enabled: false,
    why: `cancel and retry need the admin credential; these are ${role.role}: start shoal inspect with --connect admin.json`,
  };
}

/** Streams `ServerMessage`s to every page as server-sent events. */
class Hub {
  readonly clients = new Set<Client>();
  readonly history: Transition[] = [];
  /** The latest snapshot of each live actor, and its recent events, for pages that join later. */
  readonly actors = new Map<string, ShoalInspectionEvent>();
  readonly recent: ShoalInspectionEvent[] = [];
  readonly jobStates = new JobStates();
  readonly rows = new JobRows(inspectorDefaults.jobsMax);
  /** Rows changed since the last flush to the pages (they go out together, a few times a second). */
  readonly #changed = new Map<string, JobRow>();
  readonly #removed = new Set<string>();
  status: ServerMessage | null = null;
  actions: ServerMessage = { type: 'actions', enabled: false, why: 'checking what these credentials may do' };
  hello: ServerMessage;
  constructor(hello: ServerMessage) {
    this.hello = hello;
  }
  /** Pages dropped for falling behind (their buffered bytes past the limit). */
  dropped = 0;
  write(c: Client, m: ServerMessage): void {
    if (!this.clients.has(c) && m.type !== 'hello') return;
    c.res.write(`data: ${JSON.stringify(m)}\n\n`);
    // A page that does not read (a stalled tab, a slow link) is let go rather than buffered for without
    // bound; its EventSource reconnects and gets the whole state again.
    if (c.res.writableLength > inspectorDefaults.pageBufferMaxBytes * (c.joining ? 4 : 1)) {
      this.clients.delete(c);
      this.dropped++;
      c.res.end();
    }
  }
  broadcast(m: ServerMessage): void {
    for (const c of this.clients) this.write(c, m);
  }
  transitions(items: Transition[]): void {
    this.history.push(...items);
    this.jobStates.see(items);
    if (this.history.length > inspectorDefaults.historyMax) this.history.splice(0, this.history.length - inspectorDefaults.historyMax);
    this.broadcast({ type: 'transitions', items });
  }
  row(r: JobRecord): void {
    const row = jobRow(r);
    if (!this.rows.put(row)) return;
    this.#removed.delete(row.id);
    this.#changed.set(row.id, row);
  }
  removed(id: string): void {
    if (!this.rows.remove(id)) return;
    this.#changed.delete(id);
    this.#removed.add(id);
  }
  /** Send the rows changed since the last flush. */
  flushRows(): void {
    if (this.#changed.size === 0 && this.#removed.size === 0) return;
    this.broadcast({ type: 'jobs', rows: [...this.#changed.values()], removed: [...this.#removed] });
    this.#changed.clear();
    this.#removed.clear();
  }
  inspection(items: ShoalInspectionEvent[]): void {
    for (const e of items) {
      if (e.type === '@xstate.event') {
        this.recent.push(e);
        if (this.recent.length > 500) this.recent.shift();
      } else {
        this.actors.delete(e.sessionId); // re-inserted: the map's order is the last update's
        this.actors.set(e.sessionId, e);
        if (this.actors.size > inspectorDefaults.actorsMax) this.actors.delete(this.actors.keys().next().value!);
      }
    }
    this.broadcast({ type: 'inspection', items: this.forPage(items) });
  }
  /** Pages get the states, not the contexts (fetched for the one selected actor) nor the definitions; all of it when relaying to Stately's inspector. */
  forPage(items: ShoalInspectionEvent[]): ShoalInspectionEvent[] {
    return this.hello.type === 'hello' && this.hello.stately ? items : items.map(slim);
  }
  /** The latest context of an actor (`coordinator:n1`) the nodes reported, or null. */
  context(key: string): unknown {
    let found: ShoalInspectionEvent | undefined;
    for (const e of this.actors.values()) if (`${e.shoal.kind}:${e.shoal.actor}` === key) found = e;
    return (found as { snapshot?: { context?: unknown } } | undefined)?.snapshot?.context ?? null;
  }
  /**
   * A new page: the current state (charts, status, actors, the jobs table), each chunk once the page
   * has read the last, then live events. The page fetches the history itself (`/api/history`) once it
   * has drawn the present, so a long history never delays the first paint.
   */
  join(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    const c: Client = { res, joining: true };
    this.clients.add(c);
    req.on('close', () => this.clients.delete(c));
    this.write(c, this.hello);
    if (this.status) this.write(c, this.status);
    this.write(c, this.actions);
    this.write(c, { type: 'inspection', items: this.forPage([...this.actors.values(), ...this.recent]) });
    const rows = [...this.rows.values()];
    // Bounded by the table's size (jobsMax rows, ~200 bytes each): no need to wait for the page between chunks.
    // Small chunks: the page parses each in its own task.
    for (let i = 0; i < rows.length && this.clients.has(c); i += 2_000) {
      this.write(c, { type: 'jobs', rows: rows.slice(i, i + 2_000), removed: [] });
    }
    this.write(c, { type: 'synced' });
    c.joining = false;
  }

  /** The history, newest first, as lines of JSON arrays of transitions, written as the page reads them (it parses a line at a time). */
  async sendHistory(res: ServerResponse): Promise<void> {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const history = this.history.slice();
    for (let i = history.length; i > 0 && !res.destroyed; i -= 2_000) {
      res.write(`${JSON.stringify(history.slice(Math.max(0, i - 2_000), i))}\n`);
      if (res.writableLength > 1024 * 1024) await drained(res);
    }
    res.end();
  }
}

/** Follow the cluster: history then live transitions, the inspection feed (with periodic syncs), status. Returns a stop. */
async function follow(nc: NatsConnection, n: Names, hub: Hub, since: Date): Promise<() => void> {
  const stop = new AbortController();
  const live = nc.subscribe(n.allEvents, {
    callback: (_err, m) => {
      try {
        hub.transitions(transitionsOf(m.data));
      } catch {
        // not an event
      }
    },
  });
  const batch: Transition[] = [];
  for await (const t of tailTransitions(nc, n, { since, signal: stop.signal })) batch.push(t);
  hub.transitions(batch);
  const feed = nc.subscribe(n.inspectAllEvents, {
    callback: (_err, m) => {
      try {
        hub.inspection(decode(z.array(z.any()), m.data, 'inspection batch') as ShoalInspectionEvent[]);
      } catch {
        // not a batch
      }
    },
  });
  const sync = async () => {
    try {
      for await (const m of await nc.requestMany(n.inspectSync, undefined, { strategy: 'timer', maxWait: 500 })) {
        hub.inspection(
          (decode(z.object({ events: z.array(z.any()) }).passthrough(), m.data, 'sync reply').events) as ShoalInspectionEvent[],
        );
      }
    } catch {
      // no node answers now: the next round asks again
    }
  };
  const status = async () => {
    try {
      hub.status = { type: 'status', status: await callApi(nc, n, 'status', {}, 2_000) };
    } catch (err) {
      hub.status = { type: 'status', status: null, error: (err as Error).message };
    }
    hub.broadcast(hub.status);
  };
  const stopRecords = watchRecords(nc, n, hub.jobStates, {
    add: (t) => hub.transitions([t]),
    row: (r) => hub.row(r),
    removed: (id) => hub.removed(id),
  }, since.getTime());
  // Actions need admin credentials; until a node has answered the probe, ask again.
  let role: CredentialsRole | null = null;
  const probe = async () => {
    if (role && role.admin !== null) return;
    role = await credentialsRole(nc, n);
    hub.actions = { type: 'actions', ...actionsAllowed(role) };
    hub.broadcast(hub.actions);
  };
  void sync();
  void status().then(probe);
  const timers = [
    setInterval(() => void sync(), inspectorDefaults.syncIntervalMs),
    setInterval(() => void status().then(probe), 1_000),
    setInterval(() => hub.flushRows(), inspectorDefaults.rowsFlushMs),
  ];
  return () => {
    stop.abort();
    stopRecords();
    timers.forEach(clearInterval);
    live.unsubscribe();
    feed.unsubscribe();
  };
}

export async function runInspect(options: InspectOptions): Promise<number> {
  const keepFinishedMs = parseDuration(options.keepFinished, '--keep-finished');
  const { script, charts: layouts } = await pageAssets();
  const replay = options.replay ? readReplay(options.replay) : null;
  const nc = replay ? null : await connectNats(options, 'shoal-inspect');
  const n = names(options.prefix);
  const token = randomUUID();
  const hub = new Hub({
    type: 'hello',
    mode: replay ? 'replay' : 'live',
    source: replay ? options.replay! : nc!.getServer(),
    keepFinishedMs,
    charts: layouts,
    violations: replay?.violations ?? [],
    stately: options.stately === true,
    token,
  });
  if (replay) {
    for (const r of replay.records) hub.rows.put(jobRow(r));
    hub.actions = { type: 'actions', enabled: false, why: 'a replay: nothing to cancel or retry' };
  }
  const jobs = async (id: string): Promise<unknown> =>
    replay ? replay.records.find((r) => r.id === id) ?? null : await callApi(nc!, n, 'jobs.get', { id }, 2_000).catch(() => null);

  /** Cancel or retry a job for the page: a POST with the page's token, only with admin credentials, never in a replay. */
  const act = async (req: IncomingMessage, endpoint: 'jobs.cancel' | 'jobs.retry'): Promise<[number, unknown]> => {
    if (req.method !== 'POST') return [405, { error: 'POST only' }];
    if (req.headers['x-shoal-token'] !== token) return [403, { error: "not this page's token" }];
    if (!nc) return [409, { error: 'a replay cannot change jobs' }];
    const allowed = hub.actions.type === 'actions' && hub.actions.enabled;
    if (!allowed) return [403, { error: hub.actions.type === 'actions' ? hub.actions.why : 'not allowed' }];
    let body: { id?: unknown };
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      return [400, { error: 'the body is not JSON' }];
    }
    if (typeof body.id !== 'string') return [400, { error: 'body.id: a job id' }];
    try {
      return [200, await callApi(nc, n, endpoint, { id: body.id }, 5_000)];
    } catch (err) {
      return [409, { error: (err as Error).message }];
    }
  };

  const allowHost = [options.host, ...(options.allowHost ?? [])];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (code: number, type: string, body: string) =>
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    if (!requestAllowed({ host: req.headers.host, origin: req.headers.origin }, allowHost)) {
      return send(403, 'text/plain', `host ${req.headers.host ?? '(none)'} or origin not allowed; start with --allow-host NAME\n`);
    }
    if (url.pathname === '/') return send(200, 'text/html; charset=utf-8', pageHtml);
    if (url.pathname === '/app.js') return send(200, 'text/javascript; charset=utf-8', script);
    if (url.pathname === '/api/stream') return hub.join(req, res);
    if (url.pathname === '/api/history') return void hub.sendHistory(res);
    if (url.pathname === '/api/jobs/cancel' || url.pathname === '/api/jobs/retry') {
      void act(req, url.pathname.endsWith('cancel') ? 'jobs.cancel' : 'jobs.retry').then(([code, body]) =>
        send(code, 'application/json', JSON.stringify(body))
      );
      return;
    }
    if (url.pathname === '/api/context') {
      return send(200, 'application/json', JSON.stringify(hub.context(url.searchParams.get('actor') ?? '') ?? null));
    }
    if (url.pathname === '/api/job') {
      // null, not 404, for a job without a record here (a replay without records): the page shows that.
      void jobs(url.searchParams.get('id') ?? '').then((r) => send(200, 'application/json', JSON.stringify(r)));
      return;
    }
    send(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen on ${options.host}:${options.port}: ${err.message}`, { cause: err })));
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as { port: number };
  const pageUrl = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${address.port}/`;
  let stopFollowing = () => {};
  if (replay) hub.transitions(replay.history);
  else stopFollowing = await follow(nc!, n, hub, new Date(Date.now() - parseDuration(options.history, '--history')));
  process.stdout.write(
    `Shoal inspector: ${pageUrl}  (${replay ? `replaying ${options.replay}` : `live from ${nc!.getServer()}`}; Ctrl-C stops)\n`,
  );
  if (options.open) {
    spawn(process.platform === 'darwin' ? 'open' : 'xdg-open', [pageUrl], { stdio: 'ignore', detached: true }).on('error', () => {})
      .unref();
  }

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  stopFollowing();
  for (const c of hub.clients) c.res.end();
  server.close();
  await nc?.close();
  return 0;
}
