// Virtual time for the simulation, with discrete-event semantics: `advance`
// takes the earliest due timer, sets `now` to its due time, runs it, and lets
// every promise chain it started settle (one macrotask turn) before the next.
// Each process gets a view: a paused view (SIGSTOP) holds its timers and the
// messages delivered to it until resume, then runs the overdue ones at once, in
// due order; a killed view runs nothing ever again. Views are XState clocks.
import type { Clock } from '../../base/time.ts';

type Timer = { due: number; seq: number; fn: () => void; cancelled: boolean };

/** One macrotask turn: every microtask queued before it has run. Node and Deno 2 both have setImmediate. */
const turn: () => Promise<void> = typeof setImmediate === 'function'
  ? () => new Promise((r) => setImmediate(r))
  : () =>
    new Promise((r) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        ch.port1.close();
        r();
      };
      ch.port2.postMessage(0);
    });

/** Timers ordered by (due, seq): a binary heap. */
class TimerHeap {
  readonly #a: Timer[] = [];
  get size(): number {
    return this.#a.length;
  }
  #less(i: number, j: number): boolean {
    const x = this.#a[i]!;
    const y = this.#a[j]!;
    return x.due < y.due || (x.due === y.due && x.seq < y.seq);
  }
  #swap(i: number, j: number): void {
    const t = this.#a[i]!;
    this.#a[i] = this.#a[j]!;
    this.#a[j] = t;
  }
  push(t: Timer): void {
    this.#a.push(t);
    for (let i = this.#a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.#less(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }
  peek(): Timer | undefined {
    return this.#a[0];
  }
  pop(): Timer | undefined {
    const top = this.#a[0];
    const last = this.#a.pop();
    if (this.#a.length > 0 && last) {
      this.#a[0] = last;
      for (let i = 0;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.#a.length && this.#less(l, m)) m = l;
        if (r < this.#a.length && this.#less(r, m)) m = r;
        if (m === i) break;
        this.#swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

export class SimClock implements Clock {
  readonly start: number;
  #now: number;
  #seq = 0;
  readonly #heap = new TimerHeap();
  /** Timers run so far (a measure of work). */
  fired = 0;
  /** Called with whatever a timer callback throws (the simulation reports it). */
  onError: (err: unknown) => void = (err) => {
    throw err;
  };

  constructor(start = 0) {
    this.start = start;
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }
  mono(): number {
    return this.#now - this.start;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const t: Timer = { due: this.#now + Math.max(0, Number.isFinite(ms) ? ms : 0), seq: ++this.#seq, fn, cancelled: false };
    this.#heap.push(t);
    return t;
  }

  clearTimeout(id: unknown): void {
    if (id && typeof id === 'object' && 'cancelled' in id) (id as Timer).cancelled = true;
  }

  /** When the next live timer is due (null: none). */
  nextDue(): number | null {
    for (;;) {
      const t = this.#heap.peek();
      if (!t) return null;
      if (!t.cancelled) return t.due;
      this.#heap.pop();
    }
  }

  /** Let every pending promise chain run. */
  settle(): Promise<void> {
    return turn();
  }

  /** Run every timer due within `ms` from now, in order, settling after each; then stand at now + ms. */
  async advance(ms: number, maxTimers = 1_000_000): Promise<void> {
    const target = this.#now + Math.max(0, ms);
    await this.settle();
    for (let n = 0;; n++) {
      const due = this.nextDue();
      if (due === null || due > target) break;
      if (n >= maxTimers) throw new Error(`sim clock: more than ${maxTimers} timers within ${ms} ms (a zero-delay loop?)`);
      const t = this.#heap.pop()!;
      this.#now = Math.max(this.#now, t.due);
      this.fired++;
      try {
        t.fn();
      } catch (err) {
        this.onError(err);
      }
      await this.settle();
    }
    this.#now = target;
  }

  /** A process's view of this clock; its wall time off the true time by `skewMs` (its host's clock). */
  view(skewMs = 0): ClockView {
    return new ClockView(this, skewMs);
  }
}

type Held = { due: number; order: number; fn: () => void; timer: Timer | null; done: boolean };

/**
 * One process's clock. Its monotonic time is the shared clock's and its wall
 * time the shared one plus its host's skew (a stopped process's clock keeps
 * running); its timers and deliveries wait while it is paused.
 */
export class ClockView implements Clock {
  readonly clock: SimClock;
  readonly skewMs: number;
  #paused = false;
  #dead = false;
  #order = 0;
  #held: Held[] = [];

  constructor(clock: SimClock, skewMs = 0) {
    this.clock = clock;
    this.skewMs = skewMs;
  }

  get paused(): boolean {
    return this.#paused;
  }
  get dead(): boolean {
    return this.#dead;
  }

  now(): number {
    return this.clock.now() + this.skewMs;
  }
  mono(): number {
    return this.clock.mono();
  }

  setTimeout(fn: () => void, ms: number): Held {
    const h: Held = { due: this.clock.now() + Math.max(0, ms), order: ++this.#order, fn, timer: null, done: this.#dead };
    if (!h.done) h.timer = this.clock.setTimeout(() => this.#fire(h), ms);
    return h;
  }

  clearTimeout(id: unknown): void {
    const h = id as Held | undefined;
    if (!h || h.done) return;
    h.done = true;
    if (h.timer) this.clock.clearTimeout(h.timer);
  }

  /** Run `fn` in this process now (a message arrived): at once if it runs, at resume if paused, never if dead. */
  post(fn: () => void): void {
    if (this.#dead) return;
    if (!this.#paused) return fn();
    this.#held.push({ due: this.clock.now(), order: ++this.#order, fn, timer: null, done: false });
  }

  #fire(h: Held): void {
    if (h.done || this.#dead) return;
    if (this.#paused) {
      h.timer = null;
      this.#held.push(h);
      return;
    }
    h.done = true;
    h.fn();
  }

  pause(): void {
    if (!this.#dead) this.#paused = true;
  }

  /** SIGCONT: what fell due while stopped runs at once, in due order (each after the previous settled). */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const held = this.#held.sort((a, b) => a.due - b.due || a.order - b.order);
    this.#held = [];
    for (const h of held) {
      if (!h.done) h.timer = this.clock.setTimeout(() => this.#fire(h), 0);
    }
  }

  /** SIGKILL: nothing of this process runs again. */
  kill(): void {
    this.#dead = true;
    this.#paused = false;
    for (const h of this.#held) h.done = true;
    this.#held = [];
  }
}
