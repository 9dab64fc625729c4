// The simulated network between processes and the one NATS server (which holds
// the KV buckets): per-message latency from a seeded PRNG, FIFO per connection
// and direction (one TCP stream each way), and the faults the commands inject.
// It behaves like the real system does (docs/design.md, "Failover fast path"; the
// chaos suite's TCP proxy has the same two partition modes):
// - a crashed process's connection is closed by the server a few ms later; a
//   ping to it then answers "no responders" ('gone'), before that it times out;
// - a paused client, or one behind a blackhole (`split`: every byte held, both
//   ways, delivered in order on heal), stays connected as far as the server
//   knows until it has been silent for `pingIntervalMs * (maxPingOut + 1)`:
//   until then pings to it time out ('unknown'), after it they answer 'gone' and
//   what the blackhole held is lost. The client then sees the disconnect (at
//   once if paused, on resume) and reconnects;
// - a reset link (`disconnect`) closes the connection at once, both sides know;
//   the client reconnects after heal (`reconnectTimeWaitMs`);
// - while a client knows it is disconnected it buffers what it sends and
//   flushes it on reconnect (nats.js does): a request that timed out meanwhile
//   may still land; watches (ordered consumers) catch up after a reconnect;
// - dropped requests are lost before the server applies them (the caller times
//   out after `kvTimeoutMs`: JetStream not answering); dropped replies are lost
//   after (the ambiguous outcome).
import { defaults } from '../../base/defaults.ts';
import type { Liveness } from '../../store/lease.records.ts';
import type { ClockView, SimClock } from './clock.ts';

/** A seeded PRNG (mulberry32, shared with the trainer): the simulation never calls Math.random. */
export { rng as prng } from '../../training/random.ts';

import { Conn, type NetStats, SimNoResponders, SimTimeoutError } from './net.conn.ts';

export { Conn, type NetStats, SimNoResponders, SimTimeoutError };

export class SimNet {
  readonly clock: SimClock;
  readonly rng: () => number;
  readonly conns = new Set<Conn>();
  readonly stats: NetStats = { messages: 0, droppedRequests: 0, droppedReplies: 0, droppedMessages: 0, delayed: 0, duplicated: 0, lost: 0 };
  /** How long a silent client stays connected as far as the server knows. */
  readonly silenceMs = defaults.pingIntervalMs * (defaults.maxPingOut + 1);

  constructor(clock: SimClock, rng: () => number) {
    this.clock = clock;
    this.rng = rng;
  }

  connect(node: string, instance: string, view: ClockView): Conn {
    const c = new Conn(node, instance, view);
    this.conns.add(c);
    return c;
  }

  #latency(c: Conn): number {
    // Mostly 1-2 ms; now and then a slow message, so messages of different connections overtake each other.
    const r = this.rng();
    return 1 + Math.floor(r * 2) + (r > 0.95 ? Math.floor(this.rng() * 20) : 0) + c.slowMs;
  }

  /** Client → server: buffered while the client knows it is disconnected, held by a blackhole. */
  up(c: Conn, fn: () => void): void {
    if (c.dead) return;
    if (c.client !== 'connected') {
      c.outbox.push(fn);
      return;
    }
    if (c.split) {
      c.heldUp.push(fn);
      return;
    }
    this.stats.messages++;
    const gen = c.generation;
    const at = Math.max(c.lastUp, this.clock.now() + this.#latency(c));
    c.lastUp = at;
    this.clock.setTimeout(() => {
      if (c.generation !== gen || c.dead) this.stats.lost++;
      else if (c.split) c.heldUp.push(fn);
      else fn();
    }, at - this.clock.now());
  }

  /**
   * Server → client, run in the client process (held while it is paused, or
   * by a blackhole). Lost with its connection, unless `reliable` (a watch's
   * ordered consumer, which catches up after a reconnect).
   */
  down(c: Conn, fn: () => void, reliable = false): void {
    if (c.dead) return;
    if (!c.open) {
      if (reliable) c.backlog.push(() => this.down(c, fn, true));
      else this.stats.lost++;
      return;
    }
    if (c.split) {
      c.heldDown.push({ fn, reliable });
      return;
    }
    this.stats.messages++;
    const gen = c.generation;
    const at = Math.max(c.lastDown, this.clock.now() + this.#latency(c));
    c.lastDown = at;
    this.clock.setTimeout(() => {
      if (c.dead) return;
      if (c.generation !== gen) {
        if (reliable) c.backlog.push(() => this.down(c, fn, true));
        else this.stats.lost++;
      } else if (c.split) c.heldDown.push({ fn, reliable });
      else c.view.post(fn);
    }, at - this.clock.now());
  }

  /** A request the server answers by running `apply`; times out on the caller's clock. */
  request<T>(c: Conn, what: string, apply: () => Promise<T>, timeoutMs: number = defaults.kvTimeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const timer = c.view.setTimeout(() => {
        if (done) return;
        done = true;
        reject(new SimTimeoutError(what));
      }, timeoutMs);
      if (c.dropRequests > 0 && c.open && !c.split) {
        c.dropRequests--;
        this.stats.droppedRequests++;
        return;
      }
      this.up(c, () => {
        void apply().then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e })).then((r) => {
          if (c.dropReplies > 0) {
            c.dropReplies--;
            this.stats.droppedReplies++;
            return;
          }
          this.down(c, () => {
            if (done) return;
            done = true;
            c.view.clearTimeout(timer);
            if (r.ok) resolve(r.v);
            else reject(r.e);
          });
        });
      });
    });
  }

  /**
   * A request to another process (core NATS request/reply): to the first open connection `to` selects,
   * handled there, answered back. "No responders" (`SimNoResponders`) when none is subscribed; a timeout
   * on the caller's clock when the answer does not come in time.
   */
  ask<T>(from: Conn, to: (c: Conn) => boolean, handle: (c: Conn) => Promise<T>, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const settle = (fn: () => void) => {
        if (done) return;
        done = true;
        from.view.clearTimeout(timer);
        fn();
      };
      const timer = from.view.setTimeout(() => settle(() => reject(new SimTimeoutError(what))), timeoutMs);
      const send = () =>
        this.up(from, () => {
          const target = [...this.conns].find((c) => c.server === 'open' && to(c));
          if (!target) return this.down(from, () => settle(() => reject(new SimNoResponders(what))));
          // A lost message: the request before it is handled, or its answer after (the ambiguous outcome).
          const lost = this.#take(from, 'dropMessages') || this.#take(target, 'dropMessages');
          if (lost && this.rng() < 0.5) return void this.stats.droppedMessages++;
          const deliver = () =>
            this.down(target, () => {
              void handle(target).then((v) => {
                if (lost) return void this.stats.droppedMessages++;
                this.up(target, () => this.down(from, () => settle(() => resolve(v))));
              }, () => {});
            });
          deliver();
          if (this.#take(target, 'duplicates')) {
            this.stats.duplicated++;
            deliver();
          }
        });
      // A held-back message: everything sent after it overtakes it.
      const hold = from.delayMessages.shift();
      if (hold === undefined) return send();
      this.stats.delayed++;
      this.clock.setTimeout(send, hold);
    });
  }

  /** Use up one of a connection's pending faults of this kind; true if there was one. */
  #take(c: Conn, fault: 'dropMessages' | 'duplicates'): boolean {
    if (c[fault] <= 0) return false;
    c[fault]--;
    return true;
  }

  /** Ping a holder's own subject: 'gone' (no responders) only once the server has closed its connection. */
  ping(from: Conn, holder: { id: string; instance: string }, timeoutMs: number = defaults.probeTimeoutMs): Promise<Liveness> {
    return new Promise<Liveness>((resolve) => {
      let done = false;
      const answer = (l: Liveness) => {
        if (done) return;
        done = true;
        from.view.clearTimeout(timer);
        resolve(l);
      };
      const timer = from.view.setTimeout(() => {
        if (!done) {
          done = true;
          resolve('unknown');
        }
      }, timeoutMs);
      this.up(from, () => {
        const target = [...this.conns].find((x) => x.instance === holder.instance && x.server === 'open');
        if (!target) return this.down(from, () => answer('gone'));
        this.down(target, () => this.up(target, () => this.down(from, () => answer('alive'))));
      });
    });
  }

  /** Deliver to every open connection `to` selects (core NATS: to whoever is subscribed now). */
  publish(from: Conn, to: (c: Conn) => boolean, deliver: (c: Conn) => void): void {
    this.up(from, () => {
      for (const c of this.conns) {
        if (c.server !== 'open' || !to(c)) continue;
        this.down(c, () => deliver(c));
        if (c.duplicates > 0) {
          c.duplicates--;
          this.stats.duplicated++;
          this.down(c, () => deliver(c));
        }
      }
    });
  }

  // ---- faults ----

  /** The connection ends: the server forgets its subscriptions, bytes in flight are lost. Watches end only with the process. */
  #close(c: Conn): void {
    if (c.server === 'open') c.generation++;
    c.server = 'closed';
    c.lastUp = c.lastDown = 0;
    c.heldUp = [];
    for (const h of c.heldDown) if (h.reliable) c.backlog.push(() => this.down(c, h.fn, true));
    c.heldDown = [];
    if (!c.dead) return;
    c.queued.clear();
    for (const w of c.watches) w.stop();
    c.watches.clear();
    c.backlog = [];
  }

  /** The client learns its connection is gone (at once, or when it runs again). */
  #lost(c: Conn): void {
    if (c.client === 'gone') return;
    c.client = 'gone';
    c.view.post(() => c.onStatus('disconnected'));
  }

  #noteSilence(c: Conn): void {
    const silent = (c.split || c.view.paused) && c.server === 'open';
    if (!silent) {
      c.silentSince = null;
      return;
    }
    if (c.silentSince !== null) return;
    const since = this.clock.now();
    c.silentSince = since;
    this.clock.setTimeout(() => {
      if (c.dead || c.silentSince !== since || c.server === 'closed') return;
      // The server gives up on the silent client (unanswered pings); so does the client on the server.
      this.#close(c);
      this.#lost(c);
    }, this.silenceMs);
  }

  /** The client reconnects once it can reach the server again, if its connection was lost. */
  #maybeReconnect(c: Conn): void {
    if (c.dead || c.split || c.cut || c.view.paused || c.client !== 'gone') return;
    c.client = 'reconnecting';
    const attempt = ++c.reconnects;
    this.clock.setTimeout(() => {
      if (attempt !== c.reconnects || c.client !== 'reconnecting') return;
      if (c.dead || c.split || c.cut) {
        c.client = 'gone';
        return;
      }
      c.server = 'open';
      c.client = 'connected';
      c.silentSince = null;
      c.view.post(() => c.onStatus('reconnected'));
      const out = c.outbox;
      c.outbox = [];
      out.forEach((fn) => this.up(c, fn));
      const b = c.backlog;
      c.backlog = [];
      b.forEach((fn) => fn());
    }, defaults.reconnectTimeWaitMs + this.#latency(c));
  }

  /** SIGKILL: the server sees the socket close a few ms later. */
  kill(c: Conn): void {
    c.dead = true;
    c.view.kill();
    c.outbox = [];
    c.backlog = [];
    c.inbox = null;
    this.clock.setTimeout(() => this.#close(c), 1 + Math.floor(this.rng() * 50));
  }

  /** A process that exits on its own (drained): its connection closes cleanly. */
  exit(c: Conn): void {
    c.dead = true;
    c.view.kill();
    c.inbox = null;
    this.#close(c);
  }

  pause(c: Conn): void {
    c.view.pause();
    this.#noteSilence(c);
  }

  resume(c: Conn): void {
    c.view.resume();
    this.#noteSilence(c);
    this.#maybeReconnect(c);
  }

  /** Blackhole: both directions hold every byte until heal (or until the server gives up on the client). */
  split(c: Conn): void {
    c.split = true;
    this.#noteSilence(c);
  }

  /** Reset: the connection dies now and the link refuses new ones until heal. */
  disconnect(c: Conn): void {
    c.cut = true;
    if (c.client === 'reconnecting') c.client = 'gone';
    this.#close(c);
    this.#lost(c);
  }

  heal(c: Conn): void {
    c.split = false;
    c.cut = false;
    this.#noteSilence(c);
    const up = c.heldUp;
    const down = c.heldDown;
    c.heldUp = [];
    c.heldDown = [];
    up.forEach((fn) => this.up(c, fn));
    down.forEach((h) => this.down(c, h.fn, h.reliable));
    this.#maybeReconnect(c);
  }

  /** Faults stop: every slowness and pending drop is forgotten. */
  calm(c: Conn): void {
    c.slowMs = 0;
    c.dropRequests = 0;
    c.dropReplies = 0;
    c.duplicates = 0;
    c.dropMessages = 0;
    c.delayMessages = [];
    c.crashBeforeAssign = false;
  }
}
