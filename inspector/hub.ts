// The inspector server's hub: what it knows of the cluster (the history, the
// actors' latest states, the jobs table, status) and the pages reading it over
// server-sent events: each joins with the present, then gets live changes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JobRecord } from '../api/contract.ts';
import type { ShoalInspectionEvent } from '../node/inspection.ts';
import type { Transition } from '../nats/events.ts';
import { inspectorDefaults } from './defaults.ts';
import { isTerminalState, type JobRow, jobRow, JobRows } from './jobs.ts';
import type { ServerMessage } from './model.ts';
import { JobStates } from './records.ts';

/** An inspection event without what the page does not draw: the context, the machine's definition, an event's payload. */
function slim(e: ShoalInspectionEvent): ShoalInspectionEvent {
  const { definition: _definition, ...rest } = e as ShoalInspectionEvent & { definition?: unknown };
  const event = (e as { event?: { type?: unknown } }).event;
  const snapshot = (e as { snapshot?: { value?: unknown } }).snapshot;
  return {
    ...rest,
    ...(event ? { event: { type: event.type } } : {}),
    ...(snapshot ? { snapshot: { value: snapshot.value } } : {}),
  } as ShoalInspectionEvent;
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

/** Streams `ServerMessage`s to every page as server-sent events. */
export class Hub {
  readonly clients = new Set<Client>();
  readonly history: Transition[] = [];
  /** The latest snapshot of each live actor (`coordinator:n1`), and recent events, for pages that join later. */
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
    for (const t of items) this.history.push(t); // not push(...items): a long startup batch would pass V8's argument limit
    this.jobStates.see(items);
    // Past the cap, the oldest tenth goes at once, so trimming is rare.
    const max = inspectorDefaults.historyMax;
    if (this.history.length > max) this.history.splice(0, this.history.length - Math.floor(max * 0.9));
    this.broadcast({ type: 'transitions', items });
  }
  /** Finished longer ago than --keep-finished: not in the table. */
  #stale(row: JobRow): boolean {
    return this.hello.type === 'hello' && isTerminalState(row.state) && row.updatedAt < Date.now() - this.hello.keepFinishedMs;
  }
  row(r: JobRecord): void {
    const row = jobRow(r);
    if (this.#stale(row)) return this.removed(row.id);
    if (!this.rows.put(row)) return;
    this.#removed.delete(row.id);
    this.#changed.set(row.id, row);
  }
  removed(id: string): void {
    if (!this.rows.remove(id)) return;
    this.#changed.delete(id);
    this.#removed.add(id);
  }
  #prunedAt = 0;
  /** Send the rows changed since the last flush (and, every few seconds, drop the finished ones past --keep-finished). */
  flushRows(): void {
    if (Date.now() - this.#prunedAt > 5_000) {
      this.#prunedAt = Date.now();
      for (const row of [...this.rows.values()]) if (this.#stale(row)) this.removed(row.id);
    }
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
        const key = `${e.shoal.kind}:${e.shoal.actor}`;
        this.actors.delete(key); // re-inserted: the map's order is the last update's
        this.actors.set(key, e);
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
    return (this.actors.get(key) as { snapshot?: { context?: unknown } } | undefined)?.snapshot?.context ?? null;
  }
  /**
   * A new page: the current state (charts, status, actors, the jobs table: bounded, written at once),
   * then live events. The page fetches the history itself (`/api/history`) once it
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
