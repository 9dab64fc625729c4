// The inspector's model, shared by its server and its page (pure, no DOM, no
// NATS): the messages the server streams, and the cluster's history as one
// timeline, from which the state of every actor at any point is read back
// (time travel). Every transition of every actor, jobs included, is in the
// events stream, so the timeline is the whole truth; live inspection events
// add what a transition does not carry (a machine's context).
import type { ShoalInspectionEvent } from '../node/inspection.ts';
import type { Transition } from '../nats/events.ts';
import type { ClusterView } from '../api/contract.ts';
import type { ChartLayout } from './layout.ts';
import type { JobRow } from './jobs.ts';
import { inspectorDefaults } from './defaults.ts';

export type Kind = 'node' | 'coordinator' | 'lease' | 'job';
export const kinds: readonly Kind[] = ['node', 'coordinator', 'lease', 'job'];

export type StatusView = ClusterView & { jobs?: Record<string, number>; queueDepth?: number };

/** A checker finding (replay of a failed chaos run), placed on the timeline. */
export type ViolationMark = { invariant: string; subject: string; message: string; at: number | null; actors: string[] };

export type ServerMessage =
  | {
    type: 'hello';
    mode: 'live' | 'replay';
    /** The NATS URL, or the replayed file. */
    source: string;
    keepFinishedMs: number;
    charts: Record<Kind, ChartLayout>;
    violations: ViolationMark[];
    /** Offer the relay to Stately's hosted inspector (shoal inspect --stately). */
    stately: boolean;
  }
  /** The jobs table: rows new or changed, and jobs whose records are gone. */
  | { type: 'jobs'; rows: JobRow[]; removed: string[] }
  /** The present has been sent (the page fetches the history from /api/history next). */
  | { type: 'synced' }
  /** Whether the page may cancel and retry jobs (the inspector's credentials are admin), and why not. */
  | { type: 'actions'; enabled: boolean; why: string }
  | { type: 'transitions'; items: Transition[] }
  | { type: 'inspection'; items: ShoalInspectionEvent[] }
  | { type: 'status'; status: StatusView | null; error?: string };

/** The page's id of the actor a transition belongs to: `node:n1`, `coordinator:n1`, `lease:n1-leader`, `job:<job id>`. */
export const actorKey = (t: Pick<Transition, 'kind' | 'actor'>) => `${t.kind}:${t.actor}`;

/**
 * The XState state ids active for a state written as the history records it
 * (`running.member.draining.handingBack`): every prefix, under the machine id.
 */
export function activeStateIds(machineId: string, path: string): string[] {
  const parts = path.split('.').filter((p) => p.length > 0);
  return [machineId, ...parts.map((_, i) => `${machineId}.${parts.slice(0, i + 1).join('.')}`)];
}

/** Handler starts and ends, checkpoints: events in a job's history that leave its state as it is. */
export const isStateChange = (t: Transition) => t.from !== t.to;

function byTime(a: Transition, b: Transition): number {
  return a.wall - b.wall || (a.instance === b.instance ? a.seq - b.seq : a.instance < b.instance ? -1 : 1);
}

export type ActorTimeline = { key: string; kind: Kind; actor: string; node: string; steps: number[] };

/**
 * Every transition once, in time order, with each actor's steps as indexes
 * into that order; at most `max` of them (the oldest go first). Out-of-order
 * arrivals are sorted in once, when the timeline is next read, so a burst of
 * batches costs one sort.
 */
export class Timeline {
  readonly #seen = new Set<string>();
  #events: Transition[] = [];
  #dirty = false;
  #actors = new Map<string, ActorTimeline>();
  /** The actors that are not jobs (nodes, coordinators, leases): few, drawn every frame. */
  #machines = new Map<string, ActorTimeline>();
  readonly max: number;
  constructor(max: number = inspectorDefaults.historyMax) {
    this.max = max;
  }

  /** Returns how many were new. */
  add(items: Transition[]): number {
    let added = 0;
    for (const t of items) {
      const id = `${t.instance}:${t.seq}`;
      if (this.#seen.has(id)) continue;
      this.#seen.add(id);
      added++;
      const last = this.#events.at(-1);
      if (!this.#dirty && last && byTime(last, t) > 0) {
        if (this.#insert(t)) continue;
        this.#dirty = true;
      }
      this.#events.push(t);
      if (!this.#dirty) this.#index(t, this.#events.length - 1);
    }
    if (this.#events.length > this.max) {
      // Drop the oldest tenth at once, so trimming is rare.
      this.#settle();
      const gone = this.#events.splice(0, this.#events.length - Math.floor(this.max * 0.9));
      for (const t of gone) this.#seen.delete(`${t.instance}:${t.seq}`);
      this.#dirty = true;
    }
    return added;
  }

  #index(t: Transition, i: number): void {
    const key = actorKey(t);
    let a = this.#actors.get(key);
    if (!a) {
      this.#actors.set(key, a = { key, kind: t.kind as Kind, actor: t.actor, node: t.node, steps: [] });
      if (a.kind !== 'job') this.#machines.set(key, a);
    }
    a.steps.push(i);
  }

  /**
   * A transition a little out of order (a process reporting a moment late) goes in at its place,
   * the few events after it moved one on. False when too many would move: the caller sorts instead.
   */
  #insert(t: Transition): boolean {
    let lo = 0;
    let hi = this.#events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byTime(this.#events[mid]!, t) <= 0) lo = mid + 1;
      else hi = mid;
    }
    if (this.#events.length - lo > 200) return false;
    this.#events.splice(lo, 0, t);
    for (let j = this.#events.length - 1; j > lo; j--) {
      const steps = this.#actors.get(actorKey(this.#events[j]!))!.steps;
      steps[steps.lastIndexOf(j - 1)] = j;
    }
    const key = actorKey(t);
    if (!this.#actors.has(key)) this.#index(t, lo);
    else {
      const steps = this.#actors.get(key)!.steps;
      let k = steps.length;
      while (k > 0 && steps[k - 1]! > lo) k--;
      steps.splice(k, 0, lo);
    }
    return true;
  }

  /** Sort and index again after out-of-order arrivals (a paused process reports late, history arrives after live events) or a trim. */
  #settle(): void {
    if (!this.#dirty) return;
    this.#events.sort(byTime);
    this.#dirty = false;
    this.#actors = new Map();
    this.#machines = new Map();
    this.#events.forEach((t, i) => this.#index(t, i));
  }

  get length(): number {
    return this.#events.length;
  }
  event(i: number): Transition | undefined {
    this.#settle();
    return this.#events[i];
  }
  actors(): Iterable<ActorTimeline> {
    this.#settle();
    return this.#actors.values();
  }
  machineActors(): Iterable<ActorTimeline> {
    this.#settle();
    return this.#machines.values();
  }
  actor(key: string): ActorTimeline | undefined {
    this.#settle();
    return this.#actors.get(key);
  }

  /** The actor's last transition at or before `cursor` (an index into the timeline), or null if it did not exist yet. */
  stateAt(a: ActorTimeline, cursor: number): Transition | null {
    this.#settle();
    let lo = 0;
    let hi = a.steps.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (a.steps[mid]! <= cursor) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? null : this.#events[a.steps[found]!]!;
  }

  /** Where an event is now (events before it may have arrived late, or the oldest been trimmed), or -1 if gone. */
  indexOf(t: Transition): number {
    for (let i = this.indexAt(t.wall); i < this.#events.length && this.#events[i]!.wall <= t.wall; i++) {
      if (this.#events[i] === t) return i;
    }
    return -1;
  }

  /** The first index whose event happened at or after `wall` (for violations and times), or the last index. */
  indexAt(wall: number): number {
    this.#settle();
    let lo = 0;
    let hi = this.#events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#events[mid]!.wall < wall) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.#events.length ? lo : this.#events.length - 1;
  }
}
