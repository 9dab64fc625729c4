// An in-memory KV bucket with JetStream KV's compare-and-swap and TTL
// semantics on an injected clock: for fast model-based simulation of the pure
// machines (issue 4), never for tests where a real nats-server can be used.
// It implements the part of @nats-io/kv's KV that Shoal's stores call.

export type Clock = { now(): number };

export type MemEntry = {
  bucket: string;
  key: string;
  value: Uint8Array;
  created: Date;
  revision: number;
  operation: 'PUT' | 'DEL' | 'PURGE';
  delta?: number;
  isUpdate?: boolean;
  string(): string;
};

/** Thrown like JetStream's "wrong last sequence" (API error 10071), so isCasConflict() recognises it. */
export class MemCasError extends Error {
  readonly code = 10071;
  constructor(key: string, expected: number, actual: number) {
    super(`wrong last sequence: ${actual} (key ${key}, expected ${expected})`);
    this.name = 'MemCasError';
  }
}

type Watcher = { filter: (k: string) => boolean; push: (e: MemEntry) => void };

const text = new TextDecoder();

function matcher(filter?: string | string[]): (k: string) => boolean {
  const filters = filter === undefined ? ['>'] : Array.isArray(filter) ? filter : [filter];
  const one = (f: string) => {
    const ft = f.split('.');
    return (k: string) => {
      const kt = k.split('.');
      for (let i = 0; i < ft.length; i++) {
        if (ft[i] === '>') return kt.length > i;
        if (i >= kt.length || (ft[i] !== '*' && ft[i] !== kt[i])) return false;
      }
      return kt.length === ft.length;
    };
  };
  const ms = filters.map(one);
  return (k) => ms.some((m) => m(k));
}

export class MemKv {
  readonly bucket: string;
  readonly ttlMs: number;
  readonly clock: Clock;
  #seq = 0;
  /** Last entry per key (history 1), including delete markers. */
  #last = new Map<string, MemEntry>();
  #watchers = new Set<Watcher>();

  constructor(bucket: string, o: { ttlMs?: number; clock: Clock }) {
    this.bucket = bucket;
    this.ttlMs = o.ttlMs ?? 0;
    this.clock = o.clock;
  }

  /** The live entry for a key: expired ones are gone, as on the server (without a watch event before 2.11). */
  #current(key: string): MemEntry | undefined {
    const e = this.#last.get(key);
    if (e && this.ttlMs > 0 && this.clock.now() - e.created.getTime() >= this.ttlMs) {
      this.#last.delete(key);
      return undefined;
    }
    return e;
  }

  #write(key: string, value: Uint8Array, operation: MemEntry['operation']): number {
    const revision = ++this.#seq;
    const e: MemEntry = {
      bucket: this.bucket, key, value, created: new Date(this.clock.now()), revision, operation,
      string: () => text.decode(value),
    };
    this.#last.set(key, e);
    for (const w of this.#watchers) if (w.filter(key)) w.push({ ...e, isUpdate: true, delta: 0 });
    return revision;
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    const cur = this.#current(key);
    if (cur && cur.operation === 'PUT') throw new MemCasError(key, 0, cur.revision);
    return this.#write(key, value, 'PUT');
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    const cur = this.#current(key);
    const actual = cur?.revision ?? 0;
    if (actual !== revision) throw new MemCasError(key, revision, actual);
    return this.#write(key, value, 'PUT');
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    return this.#write(key, value, 'PUT');
  }

  async get(key: string): Promise<MemEntry | null> {
    return this.#current(key) ?? null;
  }

  async delete(key: string, opts: { previousSeq?: number } = {}): Promise<void> {
    const cur = this.#current(key);
    if (opts.previousSeq !== undefined && (cur?.revision ?? 0) !== opts.previousSeq) {
      throw new MemCasError(key, opts.previousSeq, cur?.revision ?? 0);
    }
    this.#write(key, new Uint8Array(), 'DEL');
  }

  async keys(filter?: string | string[]): Promise<AsyncIterable<string>> {
    const m = matcher(filter);
    const live = [...this.#last.keys()].filter((k) => m(k) && this.#current(k)?.operation === 'PUT');
    return (async function* () {
      yield* live;
    })();
  }

  async status(): Promise<{ values: number; ttl: number }> {
    return { values: [...this.#last.keys()].filter((k) => this.#current(k)).length, ttl: this.ttlMs };
  }

  /** Current values first, then every write; `stop()` ends the iteration. */
  async watch(o: { key?: string | string[] } = {}): Promise<AsyncIterable<MemEntry> & { stop(): void }> {
    const filter = matcher(o.key);
    const initial = [...this.#last.keys()].filter(filter).map((k) => this.#current(k)).filter((e): e is MemEntry => !!e);
    // As on the server: `delta` counts the initial values still to come (0 on the last), so readers know when they caught up.
    const queue: MemEntry[] = initial.map((e, i) => ({ ...e, delta: initial.length - 1 - i, isUpdate: false }));
    const feed = pushQueue(queue);
    const w: Watcher = { filter, push: feed.push };
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
