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

type Client = { res: ServerResponse };

/** Streams `ServerMessage`s to every page as server-sent events. */
class Hub {
  readonly clients = new Set<Client>();
  readonly history: Transition[] = [];
  /** The latest snapshot of each live actor, and its recent events, for pages that join later. */
  readonly actors = new Map<string, ShoalInspectionEvent>();
  readonly recent: ShoalInspectionEvent[] = [];
  readonly jobStates = new JobStates();
  status: ServerMessage | null = null;
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
    if (c.res.writableLength > inspectorDefaults.pageBufferMaxBytes) {
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
    if (this.history.length > 200_000) this.history.splice(0, this.history.length - 200_000);
    this.broadcast({ type: 'transitions', items });
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
    this.broadcast({ type: 'inspection', items });
  }
  join(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    const c: Client = { res };
    this.clients.add(c);
    this.write(c, this.hello);
    for (let i = 0; i < this.history.length && this.clients.has(c); i += 5_000) {
      this.write(c, { type: 'transitions', items: this.history.slice(i, i + 5_000) });
    }
    this.write(c, { type: 'inspection', items: [...this.actors.values(), ...this.recent] });
    if (this.status) this.write(c, this.status);
    req.on('close', () => this.clients.delete(c));
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
  const stopRecords = watchRecords(nc, n, hub.jobStates, (t) => hub.transitions([t]), since.getTime());
  void sync();
  void status();
  const timers = [setInterval(() => void sync(), inspectorDefaults.syncIntervalMs), setInterval(() => void status(), 1_000)];
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
  const hub = new Hub({
    type: 'hello',
    mode: replay ? 'replay' : 'live',
    source: replay ? options.replay! : nc!.getServer(),
    keepFinishedMs,
    charts: layouts,
    violations: replay?.violations ?? [],
    stately: options.stately === true,
  });
  const jobs = async (id: string): Promise<unknown> =>
    replay ? replay.records.find((r) => r.id === id) ?? null : await callApi(nc!, n, 'jobs.get', { id }, 2_000).catch(() => null);

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
