// A TCP proxy between one node process and one nats-server, so the chaos suite can cut
// a node off (crashed link or silent partition) or slow it down without killing it.
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'open' | 'reset' | 'blackhole' | 'drop';

export type ProxyStats = {
  /** Client connections accepted, refused ones (during 'reset') included. */
  connections: number;
  /** Client/target pairs with at least one socket still open. */
  open: number;
  /** Bytes delivered to the target (held bytes count once they are delivered). */
  bytesUp: number;
  /** Bytes delivered to clients. */
  bytesDown: number;
  /** Lost in 'drop' mode. */
  bytesDropped: number;
  /** cut() calls. */
  cuts: number;
};

/** A chunk waiting for its time, or the source's close (chunk null), which travels in order behind the data. */
type Held = { notBefore: number; chunk: Buffer | null };

type Direction = {
  to: Socket;
  queue: Held[];
  timer: ReturnType<typeof setTimeout> | undefined;
  counter: 'bytesUp' | 'bytesDown';
};

type Link = { client: Socket; target: Socket; up: Direction; down: Direction; dead: boolean };

const ignore = (): void => {};

export class TcpProxy {
  readonly port: number;
  readonly #host: string;
  readonly #target: { host: string; port: number };
  readonly #server: Server;
  readonly #links = new Set<Link>();
  #mode: ProxyMode = 'open';
  #latencyMs = 0;
  #closing: Promise<void> | undefined;
  #stats = { connections: 0, bytesUp: 0, bytesDown: 0, bytesDropped: 0, cuts: 0 };

  private constructor(server: Server, host: string, port: number, target: { host: string; port: number }) {
    this.#server = server;
    this.#host = host;
    this.port = port;
    this.#target = target;
    // A chaos run must never die of a socket error: every emitter we own has a listener.
    server.on('error', ignore);
    server.on('connection', (client) => this.#accept(client));
  }

  /** Listen on a free port of `o.host` (127.0.0.1) and forward each accepted client to its own connection to `target`. */
  static start(target: { host?: string; port: number }, options: { host?: string } = {}): Promise<TcpProxy> {
    const host = options.host ?? '127.0.0.1';
    const server = createServer();
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => {
        server.off('error', reject);
        const port = (server.address() as { port: number }).port;
        resolve(new TcpProxy(server, host, port, { host: target.host ?? '127.0.0.1', port: target.port }));
      });
    });
  }

  get url(): string {
    return `nats://${this.#host}:${this.port}`;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  get stats(): ProxyStats {
    return { ...this.#stats, open: this.#links.size };
  }

  /**
   * 'reset' destroys every connection now and refuses new ones until heal(): a crashed link, the client
   * sees a disconnect at once. 'blackhole' keeps connections open and holds every byte (and every close)
   * in both directions until heal() delivers them in order: a silent partition, noticed only by missed
   * pings. 'drop' is a blackhole that loses the bytes instead of holding them: after heal() the peers
   * read a stream with a hole in it, which the NATS protocol detects, and they reconnect.
   * The default is 'reset' because its effect is immediate and deterministic; a blackhole's
   * depends on both sides' ping timers, so a caller who wants one should say so.
   */
  cut(mode: Exclude<ProxyMode, 'open'> = 'reset'): void {
    if (this.#closing) return;
    this.#stats.cuts++;
    this.#mode = mode;
    for (const link of this.#links) {
      if (mode === 'reset') this.#kill(link);
      else for (const d of [link.up, link.down]) this.#stopTimer(d);
    }
  }

  /** Back to 'open': what a blackhole held is delivered now (or at its latency deadline), in order. */
  heal(): void {
    if (this.#closing) return;
    this.#mode = 'open';
    for (const link of [...this.#links]) {
      this.#pump(link.up);
      this.#pump(link.down);
    }
  }

  /** Delay every chunk by `ms` in each direction (0 = none). Chunks already waiting keep their deadline. */
  setLatency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`latency must be a finite number of ms >= 0, got ${ms}`);
    this.#latencyMs = ms;
  }

  /** Stop listening and destroy every connection; resolves once no handle of ours is left. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const link of this.#links) this.#kill(link);
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #accept(client: Socket): void {
    this.#stats.connections++;
    client.on('error', ignore);
    if (this.#closing || this.#mode === 'reset') {
      client.destroy();
      return;
    }
    // Per client, so cutting one link never disturbs another. In a blackhole the target side is still
    // opened: the server then drops it by its own ping timeout, as it would a partitioned client.
    const target = connect({ host: this.#target.host, port: this.#target.port });
    target.on('error', ignore);
    // NATS messages are small and latency is what we model: Nagle would add delay of its own.
    client.setNoDelay(true);
    target.setNoDelay(true);
    const link: Link = {
      client,
      target,
      up: { to: target, queue: [], timer: undefined, counter: 'bytesUp' },
      down: { to: client, queue: [], timer: undefined, counter: 'bytesDown' },
      dead: false,
    };
    this.#links.add(link);
    this.#wire(link, client, link.up);
    this.#wire(link, target, link.down);
  }

  #wire(link: Link, from: Socket, deps: Direction): void {
    from.on('data', (chunk: Buffer) => this.#enqueue(link, deps, chunk));
    // 'close' follows 'end' and 'error' alike; the other side learns of it in order, after the data.
    from.on('close', () => {
      if (link.dead) return;
      this.#enqueue(link, deps, null);
      if (link.client.destroyed && link.target.destroyed) this.#kill(link);
    });
  }

  #enqueue(link: Link, deps: Direction, chunk: Buffer | null): void {
    // Nothing is held for a socket that is gone, so memory is bounded by what live peers send.
    if (link.dead || deps.to.destroyed) return;
    if (this.#mode === 'drop' && chunk !== null) {
      this.#stats.bytesDropped += chunk.length;
      return;
    }
    deps.queue.push({ notBefore: performance.now() + this.#latencyMs, chunk });
    this.#pump(deps);
  }

  /** Deliver what is due, oldest first; one timer per direction waits for the head, so nothing overtakes it. */
  #pump(deps: Direction): void {
    if (this.#mode !== 'open' || deps.timer !== undefined) return;
    const now = performance.now();
    let i = 0;
    while (i < deps.queue.length && deps.queue[i]!.notBefore <= now) this.#deliver(deps, deps.queue[i++]!);
    deps.queue.splice(0, i);
    if (deps.queue.length === 0) return;
    deps.timer = setTimeout(() => {
      deps.timer = undefined;
      this.#pump(deps);
    }, Math.max(1, Math.ceil(deps.queue[0]!.notBefore - now)));
  }

  #deliver(deps: Direction, item: Held): void {
    if (deps.to.destroyed) return;
    if (item.chunk === null) {
      // Flush what was written, then close: the peer sees the data and then the disconnect.
      deps.to.destroySoon();
      return;
    }
    if (!deps.to.writable) return;
    deps.to.write(item.chunk);
    this.#stats[deps.counter] += item.chunk.length;
  }

  #stopTimer(deps: Direction): void {
    clearTimeout(deps.timer);
    deps.timer = undefined;
  }

  #kill(link: Link): void {
    link.dead = true;
    this.#links.delete(link);
    for (const d of [link.up, link.down]) {
      this.#stopTimer(d);
      d.queue.length = 0;
    }
    link.client.destroy();
    link.target.destroy();
  }
}
