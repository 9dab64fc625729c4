// Following the cluster from outside through its event stream: who leads,
// and when a new leader first acts. Used by the demo, tests and benches.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { isLeaderAction, type Transition, transitionsOf } from '../nats/events.ts';
import type { Names } from '../nats/subjects.ts';

export class LeaderWatch {
  readonly seen: Transition[] = [];
  #sub: Subscription;
  #waiters: Array<{ pred: (t: Transition) => boolean; resolve: (t: Transition) => void }> = [];

  constructor(nc: NatsConnection, n: Names) {
    this.#sub = nc.subscribe(n.allEvents, {
      callback: (_err, msg) => {
        let ts: Transition[];
        try {
          ts = transitionsOf(msg.data);
        } catch {
          return;
        }
        for (const t of ts) {
          if (t.kind !== 'coordinator') continue;
          this.seen.push(t);
          this.#waiters = this.#waiters.filter((w) => (w.pred(t) ? (w.resolve(t), false) : true));
        }
      },
    });
  }

  /** The first leader action under an epoch above `epoch` (past or future). */
  nextLeaderAction(epoch: number, timeoutMs = 30_000): Promise<Transition> {
    return this.next((t) => isLeaderAction(t) && t.epoch! > epoch, `a new leader above epoch ${epoch}`, timeoutMs);
  }

  /** The first placement under an epoch above `epoch`: its recovery pass is done (its job table is loaded). */
  nextLeaderPlacing(epoch: number, timeoutMs = 30_000): Promise<Transition> {
    return this.next(
      (t) => t.to === 'active.leader.placing' && (t.from ?? '') === 'active.leader.recovering' && t.epoch! > epoch,
      `placement above epoch ${epoch}`,
      timeoutMs,
    );
  }

  /** The first coordinator transition (past or future) that `pred` accepts. */
  next(pred: (t: Transition) => boolean, what: string, timeoutMs: number): Promise<Transition> {
    const seen = this.seen.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ pred, resolve: (t) => (clearTimeout(timer), resolve(t)) });
    });
  }

  stop(): void {
    this.#sub.unsubscribe();
  }
}
