// The dispatcher's life beside the coordinator's states. It lives for a whole
// leadership term, not just the `placing` state (a recovery pass every few
// hundred ms would otherwise drop its intake): while this node leads it serves
// the intake subject and the API's waits and status, and the placement loop
// runs rounds whenever submits arrive or a record moves. When the term ends it
// stops serving and gives up its job table.
import { fromCallback } from 'xstate';
import type { CoordinatorEvent, DutyInput } from '../../machines/coordinator.machine.ts';
import { defaults } from '../../base/defaults.ts';
import { realClock } from '../../base/time.ts';
import type { Intake } from '../../nats/dispatch.ts';
import type { ClusterCache } from './cluster.cache.ts';
import type { DutyDeps, Placer } from './deps.ts';
import { Dispatcher } from './dispatcher.ts';

/** What a dispatching node serves while it leads, and what it does when it stops leading. */
export type DispatchServing = {
  /** Serve the intake subject and the API's waits and status; returns the stop. */
  serve(intake: Intake): () => void;
  /** The term is over: let go of what only the dispatcher needs (the job index). */
  release(): void;
};

export class DispatchHost {
  readonly #deps: DutyDeps;
  readonly #cluster: ClusterCache;
  readonly #serving: DispatchServing;
  #current: { epoch: number; dispatcher: Dispatcher; stopServing: () => void; unfollow: () => void; watch: unknown } | null = null;
  #standby: string | undefined;

  constructor(deps: DutyDeps, cluster: ClusterCache, serving: DispatchServing) {
    this.#deps = deps;
    this.#cluster = cluster;
    this.#serving = serving;
  }

  /**
   * The warm standby this dispatcher names in its lease: a ready node (the same one while it stays ready)
   * that keeps a copy of the job table and alone pings the leader, so it takes over with nothing to rebuild.
   */
  standby(): string | undefined {
    if (!this.#current) return undefined;
    const ready = this.#cluster.ready.map((n) => n.id).filter((id) => id !== this.#deps.self.id).sort();
    if (!this.#standby || !ready.includes(this.#standby)) this.#standby = ready[0];
    return this.#standby;
  }

  /** This node's dispatcher's intake while it dispatches (submits it gets itself skip the network). */
  local(): Intake | null {
    const d = this.#current?.dispatcher;
    return d && this.#deps.leading() ? (items) => d.intake(items) : null;
  }

  /** The dispatcher of term `epoch`, started (and serving) on its first use in the term. */
  dispatcher(epoch: number): Dispatcher {
    if (this.#current?.epoch === epoch) return this.#current.dispatcher;
    this.stop();
    const clock = this.#deps.clock ?? realClock;
    const placer: Placer = {
      deps: this.#deps,
      cluster: this.#cluster,
      clock,
      awarded: new Map(),
      enqueued: new Set(),
      yielding: new Map(),
      rounds: 0,
    };
    const dispatcher = new Dispatcher(placer);
    const stopServing = this.#serving.serve((items) => dispatcher.intake(items));
    const unfollow = this.#cluster.follow(() => dispatcher.poke());
    // Leadership can end in any state; look every so often and stop serving as soon as it has.
    const check = () => {
      if (!this.#deps.leading()) return this.stop();
      if (this.#current) this.#current.watch = clock.setTimeout(check, defaults.dispatchCheckMs);
    };
    this.#current = { epoch, dispatcher, stopServing, unfollow, watch: clock.setTimeout(check, defaults.dispatchCheckMs) };
    void dispatcher.resume().catch((err) => this.#deps.log(`dispatch: could not resume assignments: ${(err as Error).message}`));
    return dispatcher;
  }

  stop(): void {
    const c = this.#current;
    if (!c) return;
    this.#current = null;
    (this.#deps.clock ?? realClock).clearTimeout(c.watch);
    c.stopServing();
    c.unfollow();
    c.dispatcher.stop();
    this.#serving.release();
  }
}

/** The `place` duty for `dispatch` placement: rounds while `placing`, on submits, on record changes, and on a timer. */
export function dispatchLoop(deps: DutyDeps, host: DispatchHost) {
  const clock = deps.clock ?? realClock;
  return fromCallback<CoordinatorEvent, DutyInput>(({ input }) => {
    const dispatcher = host.dispatcher(input.epoch);
    let stopped = false;
    let timer: unknown;
    let busy = false;
    let again = false;
    const round = async (): Promise<void> => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        do {
          again = false;
          if (stopped || !deps.leading()) return;
          if (await dispatcher.round()) again = true;
        } while (again && !stopped);
      } catch (err) {
        deps.log(`dispatch round failed: ${(err as Error).message}`);
      } finally {
        busy = false;
        if (!stopped) {
          clock.clearTimeout(timer);
          timer = clock.setTimeout(() => void round(), defaults.placeIntervalMs);
        }
      }
    };
    // The dispatcher wakes its loop when a job is queued, a node has room again, or submits arrive.
    dispatcher.wake = () => void round();
    void round();
    return () => {
      stopped = true;
      dispatcher.wake = () => {};
      clock.clearTimeout(timer);
    };
  });
}
