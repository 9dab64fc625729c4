// `shoal inspect`: a local web page that draws every actor of the cluster as
// its statechart (laid out by elkjs: assets.ts), live, with a timeline to travel back.
// The server reads the events stream (history, then live), the job records
// (a KV watch: the authority for a job's state, see records.ts), the nodes'
// inspection feed (it asks every node to sync every few seconds, which is
// also the feed's heartbeat) and the status API, and streams all of it to the
// page over server-sent events. Every asset comes from the package; the page
// asks no host but this one. `--replay FILE` opens a saved history instead.
import { inspectorDefaults } from './defaults.ts';
import { result, say } from '../base/output.ts';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
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
import { actorKey, type ViolationMark } from './model.ts';
import { pageHtml } from './page/html.ts';
import { watchRecords } from './records.ts';
import { Hub } from './hub.ts';
import { jobRow } from './jobs.ts';
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

function actionsAllowed(role: CredentialsRole): { enabled: boolean; why: string } {
  if (role.role === 'admin') return { enabled: true, why: "cancel and retry run with the inspector's admin credentials" };
  if (role.admin === null) return { enabled: false, why: 'no node has answered yet: cancel and retry wait for one' };
  return {
    enabled: false,
    why: `cancel and retry need the admin credential; these are ${role.role}: start shoal inspect with --connect admin.json`,
  };
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
  let probing = false;
  const probe = async () => {
    if ((role && role.admin !== null) || probing) return;
    probing = true;
    try {
      role = await credentialsRole(nc, n);
      hub.actions = { type: 'actions', ...actionsAllowed(role) };
      hub.broadcast(hub.actions);
    } finally {
      probing = false;
    }
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
  });
  if (replay) {
    for (const r of replay.records) hub.rows.put(jobRow(r));
    hub.actions = { type: 'actions', enabled: false, why: 'a replay: nothing to cancel or retry' };
  }
  const jobs = async (id: string): Promise<unknown> =>
    replay ? replay.records.find((r) => r.id === id) ?? null : await callApi(nc!, n, 'jobs.get', { id }, 2_000).catch(() => null);

  /** Cancel or retry a job for the page: a POST with the token from the printed URL, only with admin credentials, never in a replay. */
  const act = async (req: IncomingMessage, endpoint: 'jobs.cancel' | 'jobs.retry'): Promise<[number, unknown]> => {
    if (req.method !== 'POST') return [405, { error: 'POST only' }];
    if (req.headers['x-shoal-token'] !== token) {
      return [403, { error: 'no token or a wrong one: open the URL shoal inspect printed (it carries the token)' }];
    }
    if (!nc) return [409, { error: 'a replay cannot change jobs' }];
    const allowed = hub.actions.type === 'actions' && hub.actions.enabled;
    if (!allowed) return [403, { error: hub.actions.type === 'actions' ? hub.actions.why : 'not allowed' }];
    let body: unknown;
    try {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > 4096) return [413, { error: 'the body is over 4 KiB: send {"id": "<job id>"}' }];
        chunks.push(c as Buffer);
      }
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      return [400, { error: 'the body is not JSON' }];
    }
    const id = typeof body === 'object' && body !== null ? (body as { id?: unknown }).id : undefined;
    if (typeof id !== 'string') return [400, { error: 'body.id: a job id' }];
    try {
      return [200, await callApi(nc, n, endpoint, { id }, 5_000)];
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
      void act(req, url.pathname.endsWith('cancel') ? 'jobs.cancel' : 'jobs.retry').then(
        ([code, body]) => send(code, 'application/json', JSON.stringify(body)),
        (err) => send(500, 'application/json', JSON.stringify({ error: (err as Error).message })),
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
  // The URL carries the token for cancel and retry (as Jupyter's does): whoever has the URL from this terminal
  // may act; a page opened without it, or anything else that reaches the port, may only look.
  const pageUrl = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${address.port}/?token=${token}`;
  let stopFollowing = () => {};
  if (replay) hub.transitions(replay.history);
  else stopFollowing = await follow(nc!, n, hub, new Date(Date.now() - parseDuration(options.history, '--history')));
  say(`Shoal inspector: ${pageUrl}  (${replay ? `replaying ${options.replay}` : `live from ${nc!.getServer()}`}; Ctrl-C stops)`);
  result({ url: pageUrl, source: replay ? options.replay : nc!.getServer() });
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
