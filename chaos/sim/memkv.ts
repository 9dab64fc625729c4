// An in-memory KV bucket with JetStream KV's compare-and-swap and TTL
// semantics on an injected clock, implementing Shoal's `Bucket` port: for fast
// model-based simulation of the pure machines and the node wiring, never for
// tests where a real nats-server can be used.

import { type Bucket, CasConflictError, caughtUp, type Entry, type Watch } from '../../store/bucket.ts';

export type Clock = { now(): number };

type Watcher = { filter: (k: string) => boolean; push: (e: Entry) => void };

/** A NATS-style key filter: tokens split on '.', `*` one token, `>` the rest. */
export function keyMatcher(filter: string): (k: string) => boolean {
  const ft = filter.split('.');
  return (k) => {
    const kt = k.split('.');
    for (let i = 0; i < ft.length; i++) {
      if (ft[i] === '>') return kt.length > i;
      if (i >= kt.length || (ft[i] !== '*' && ft[i] !== kt[i])) return false;
    }
    return kt.length === ft.length;
  };
}

export class MemKv implements Bucket {
  readonly name: string;
  readonly ttlMs: number;
  readonly clock: Clock;
  #seq = 0;
  /** Last entry per key (history 1), including delete markers. */
  #last = new Map<string, Entry>();
  #watchers = new Set<Watcher>();
  /** With `log`: every write that landed, by revision (what the checker reads to know what a revision held). */
  readonly writes: Map<number, Entry> | null;

  constructor(name: string, options: { ttlMs?: number; clock: Clock; log?: boolean }) {
    this.name = name;
    this.ttlMs = options.ttlMs ?? 0;
    this.clock = options.clock;
    this.writes = options.log ? new Map() : null;
  }

  /** The last entry for a key: expired ones are gone, as on the server (without a watch event before 2.11). */
  #current(key: string): Entry | undefined {
    const e = this.#last.get(key);
    if (e && this.ttlMs > 0 && this.clock.now() - e.created.getTime() >= this.ttlMs) {
      this.#last.delete(key);
      return undefined;
    }
    return e;
  }

  #live(key: string): Entry | undefined {
    const e = this.#current(key);
    return e?.operation === 'PUT' ? e : undefined;
  }

  #write(key: string, value: Uint8Array, operation: Entry['operation']): number {
    const revision = ++this.#seq;
    const e: Entry = { key, value, created: new Date(this.clock.now()), revision, operation };
    this.#last.set(key, e);
    this.writes?.set(revision, e);
    for (const w of this.#watchers) if (w.filter(key)) w.push(e);
    return revision;
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    const cur = this.#live(key);
    if (cur) throw new CasConflictError(`create ${this.name}/${key}: exists at revision ${cur.revision}`);
    return this.#write(key, value, 'PUT');
  }

  async lastRevision(): Promise<number> {
    return this.#seq;
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    const actual = this.#current(key)?.revision ?? 0;
    if (actual !== revision) throw new CasConflictError(`update ${this.name}/${key}: at revision ${actual}, not ${revision}`);
    return this.#write(key, value, 'PUT');
  }

  /** An unconditional write (for tests and deliberately broken variants). */
  async put(key: string, value: Uint8Array): Promise<number> {
    return this.#write(key, value, 'PUT');
  }

  async get(key: string): Promise<Entry | null> {
    return this.#live(key) ?? null;
  }

  async delete(key: string, revision?: number): Promise<void> {
    this.#remove(key, revision, 'DEL');
  }

  /** As on a 2.10 server: a purge marker stays (on 2.11+ it expires; nothing here reads markers after the watch). */
  async purge(key: string, revision?: number): Promise<void> {
    this.#remove(key, revision, 'PURGE');
  }

  async compact(key: string, revision: number): Promise<void> {
    const e = this.#last.get(key);
    if (e && e.revision <= revision) this.#last.delete(key);
  }

  #remove(key: string, revision: number | undefined, operation: 'DEL' | 'PURGE'): void {
    const actual = this.#current(key)?.revision ?? 0;
    if (revision !== undefined && actual !== revision) {
      throw new CasConflictError(`${operation === 'DEL' ? 'delete' : 'purge'} ${this.name}/${key}: at revision ${actual}, not ${revision}`);
    }
    this.#write(key, new Uint8Array(), operation);
  }

  /** Keys with a value or a delete marker, as the server's stream subjects are; expired ones are gone. */
  async keys(filter: string): Promise<string[]> {
    const m = keyMatcher(filter);
    return [...this.#last.keys()].filter((k) => m(k) && this.#current(k));
  }

  /** Current values (delete markers included, as on the server), the caught-up mark, then every write; `stop()` ends it. */
  async watch(filter: string): Promise<Watch> {
    const matches = keyMatcher(filter);
    const initial = [...this.#last.keys()].filter(matches).map((k) => this.#current(k)).filter((e): e is Entry => !!e);
    const feed = pushQueue<Entry | typeof caughtUp>([...initial, caughtUp]);
    const w: Watcher = { filter: matches, push: feed.push };
    this.#watchers.add(w);
    const watchers = this.#watchers;
    return Object.assign(feed.iter, {
      stop: () => {
        watchers.delete(w);
        feed.stop();
      },
    });
  }
}

/** Values pushed by a producer, read as an async iterable until `stop()` (the shape of a KV watch). */
export function pushQueue<T>(queue: T[] = []): { push(e: T): void; iter: AsyncIterable<T>; stop(): void } {
  let wake: (() => void) | null = null;
  let stopped = false;
  const iter = (async function* () {
    while (!stopped) {
      const e = queue.shift();
      if (e !== undefined) yield e;
      else await new Promise<void>((r) => (wake = r));
    }
  })();
  return {
    push: (e) => {
      if (stopped) return;
      queue.push(e);
      wake?.();
    },
    iter,
    stop: () => {
      stopped = true;
      (wake as (() => void) | null)?.();
    },
  };
}
