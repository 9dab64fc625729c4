// The dispatcher: the leader with `dispatch` placement. It holds the live job
// table (its job index) and the node table in memory, takes submits from the
// API nodes in batches, and places jobs itself (policies/dispatch.ts): a new
// job's record is created already assigned where a node has credit, a queued
// one is assigned by compare-and-swap on the revision it holds. Each node gets
// only its own assignments, in batches, acknowledged and sent again until they
// are. Every write is still a CAS on one record: two dispatchers at once stay safe.
import type { JobRecord } from '../../api/contract.ts';
import { applyJobEvent, type JobEvent, lastAttempt } from '../../machines/job.machine.ts';
import { dispatchRound, type NodeState } from '../../policies/dispatch.ts';
import { effectivePriority, type NodeBid, type OfferedJob, offerOrder } from '../../policies/placement.ts';
import { addUsage, noUsage, type Usage, usageOf } from '../../policies/requirements.ts';
import { defaults } from '../../base/defaults.ts';
import { ApiError } from '../../base/errors.ts';
import type { IntakeItem, IntakeResult } from '../../nats/messages.ts';
import type { Versioned } from '../../store/job.store.ts';
import { capacityOf } from './cluster.cache.ts';
import type { Placer } from './deps.ts';
import { Deliveries } from './deliveries.ts';
import { atLimit, preempt, settlePending, typeRoom } from './placement.waiting.ts';
import { recordOfIntake, sameSubmit } from '../job.queries.ts';
import { toApiError } from '../../nats/service.ts';

type Incoming = { item: IntakeItem; resolve: (r: IntakeResult) => void };

/**
 * Recent run times (ms) of finished attempts, for the prefetch: where jobs run short, a node holds enough
 * beyond its slots to keep them busy for `prefetchWindowMs` while its next assignments are on their way.
 */
class RunTimes {
  #mean: number | null = null;
  see(r: JobRecord): void {
    const a = lastAttempt(r);
    if (!a?.startedAt || !a.endedAt) return;
    const ms = a.endedAt - a.startedAt;
    this.#mean = this.#mean === null ? ms : 0.9 * this.#mean + 0.1 * ms;
  }
  /** How many jobs a node may hold per slot: 1, and more where jobs run short. */
  get perSlot(): number {
    if (this.#mean === null) return 1;
    return 1 + Math.min(defaults.prefetchMaxPerSlot, Math.floor(defaults.prefetchWindowMs / Math.max(0.5, this.#mean)));
  }
}

export class Dispatcher {
  readonly placer: Placer;
  readonly #incoming: Incoming[] = [];
  readonly #deliveries: Deliveries;
  readonly #runTimes = new RunTimes();
  /** When each node was last given a job, and the times of its recent wins (fairness, the scorer's inputs). */
  readonly #lastWin = new Map<string, number>();
  readonly #wins = new Map<string, number[]>();
  #wake: () => void = () => {};
  #unfollow: () => void = () => {};
  /** The table's queued jobs, and what each node holds (assigned or running), kept as records change: a round reads these, not every record. */
  readonly #queued = new Map<string, JobRecord>();
  readonly #held = new Map<string, Map<string, Usage>>();
  readonly #holder = new Map<string, string>();
  /** Held jobs waiting on I/O (their record says `ioWait`): within a node's I/O slots they hold no compute slot. */
  readonly #inIo = new Set<string>();

  constructor(placer: Placer) {
    this.placer = placer;
    this.#deliveries = new Deliveries(placer);
    const { index } = placer.deps.jobs();
    for (const r of index.live.values()) this.#see(r);
    this.#unfollow = index.onRecord((r) => {
      if (this.#see(r)) this.#wake();
    });
  }

  /** A record version the table took: keep the queue and the nodes' holdings; true when a round may place more now. */
  #see(r: JobRecord): boolean {
    if (r.state === 'succeeded') this.#runTimes.see(r);
    let placeable = false;
    if (r.state === 'queued') {
      placeable = !this.#queued.has(r.id);
      this.#queued.set(r.id, r);
    } else this.#queued.delete(r.id);
    const was = this.#holder.get(r.id);
    const now = (r.state === 'assigned' || r.state === 'running') && r.owner ? r.owner : null;
    if (was && was !== now) {
      this.#held.get(was)?.delete(r.id);
      this.#holder.delete(r.id);
      placeable = true; // a node has room again
      if (r.state === 'cancelled') this.#deliveries.cancel(was, r.id);
    }
    const io = now !== null && r.state === 'running' && r.phase === 'ioWait';
    if (io !== this.#inIo.has(r.id)) {
      if (io) {
        this.#inIo.add(r.id);
        placeable = true; // its compute slot is free for another
      } else this.#inIo.delete(r.id);
    }
    if (now) {
      const h = this.#held.get(now) ?? new Map<string, Usage>();
      this.#held.set(now, h.set(r.id, usageOf(r.requires)));
      this.#holder.set(r.id, now);
    }
    // An assignment this dispatcher has not sent (another's, whose message may never have gone out): send it.
    const v = r.state === 'assigned' && r.owner ? this.placer.deps.jobs().index.versioned(r.id) : undefined;
    if (v && v.value === r && this.#deliveries.add(r.owner!, v)) placeable = true;
    return placeable;
  }

  /** Wake the placement loop (new submits, a node freed a slot). */
  set wake(fn: () => void) {
    this.#wake = fn;
  }
  /** Run a round soon (a node joined or left). */
  poke(): void {
    this.#wake();
  }

  /** A batch of submits: each resolves once its record is stored (created, or found from an earlier submit). */
  intake(items: IntakeItem[]): Promise<IntakeResult[]> {
    const { deps } = this.placer;
    if (!deps.leading()) return Promise.resolve(items.map((i) => errorOf(i.id, notDispatching())));
    const out = items.map((item) => new Promise<IntakeResult>((resolve) => this.#incoming.push({ item, resolve })));
    this.#wake();
    return Promise.all(out);
  }

  /** On a new term: send again every assignment the table holds (the nodes ignore what they have already). */
  async resume(): Promise<void> {
    const { index } = this.placer.deps.jobs();
    await index.ready();
    for (const r of index.live.values()) this.#see(r);
    this.#wake();
  }

  stop(): void {
    this.#unfollow();
    this.#deliveries.stop();
    for (const { item, resolve } of this.#incoming.splice(0)) resolve(errorOf(item.id, notDispatching()));
  }

  /** One placement round; returns whether to go again at once (more waits than one round placed). */
  async round(): Promise<boolean> {
    const { deps, clock } = this.placer;
    const { index } = deps.jobs();
    await index.ready();
    const now = clock.now();
    const incoming = this.#incoming.splice(0, defaults.jobsPerAuction);
    for (const id of this.#queued.keys()) if (!index.live.has(id)) this.#queued.delete(id); // deleted meanwhile
    // The queued jobs take their places under their types' concurrency limits first; a new job beyond what they
    // left is created queued.
    const room = typeRoom(this.placer);
    const queued = await settlePending(this.placer, offerOrder(this.#queued.values(), now), room);
    const fresh = incoming.filter((x) => !this.#known(x));
    const limits = this.placer.cluster.limits;
    const offered = [
      // A delayed job is created queued; the rounds place it once it is due.
      ...fresh.filter(({ item }) => (item.notBefore ?? 0) <= now && atLimit(item.type, room, limits) === null)
        .map(({ item }) => offeredOf(recordOfIntake(item), now)),
      ...queued.slice(0, defaults.jobsPerAuction).map((r) => offeredOf(r, now)),
    ].sort((a, b) => b.priority - a.priority);
    const nodes = this.#nodes(now);
    const placed = offered.length === 0 ? new Map<string, string>() : await dispatchRound(
      offered,
      nodes,
      deps.policy.dispatches!,
      deps.random ?? Math.random,
    );
    if (!deps.leading()) {
      for (const x of incoming) x.resolve(errorOf(x.item.id, notDispatching()));
      return false;
    }
    const round = `${deps.self.instance}:${++this.placer.rounds}`;
    const epochs = new Map(this.placer.cluster.ready.map((n) => [n.id, n.epoch]));
    const assign = (node: string): JobEvent => ({ type: 'job.assign', node, at: clock.now(), round, nodeEpoch: epochs.get(node) ?? null });
    await Promise.all([
      ...fresh.map((x) => this.#create(x, placed.get(x.item.id), assign)),
      ...queued.filter((r) => placed.has(r.id)).map((r) => this.#assign(r, placed.get(r.id)!, assign)),
    ]);
    this.#deliveries.flush();
    const unplaced = queued.filter((r) => !placed.has(r.id));
    if (unplaced.length > 0) await preempt(this.placer, unplaced, this.#bids(nodes), round);
    // Jobs wait for credit: a node that joined since the view was read may have it (read again, at most so often).
    const cluster = this.placer.cluster;
    if ((unplaced.length > 0 || fresh.some((x) => !placed.has(x.item.id))) && clock.mono() - cluster.readAt >= defaults.placeIntervalMs) {
      void cluster.refresh().then(() => this.#wake(), () => {});
    }
    deps.onAuction?.(0, offered.length, placed.size);
    return this.#incoming.length > 0 || (placed.size > 0 && queued.length > defaults.jobsPerAuction);
  }

  /** A submit whose job the table already has: answered from it (the same body) or refused (another body). */
  #known({ item, resolve }: Incoming): boolean {
    const stored = this.placer.deps.jobs().index.latest(item.id);
    if (!stored) return false;
    resolve(resultOf(stored, false, item));
    return true;
  }

  /** Create a new job's record, assigned to `node` if the round placed it, and answer its submit. */
  async #create({ item, resolve }: Incoming, node: string | undefined, assign: (node: string) => JobEvent): Promise<void> {
    const { store, index } = this.placer.deps.jobs();
    const events = node ? [assign(node)] : [];
    const record = events.reduce((r, e) => applyJobEvent(r, e) ?? r, recordOfIntake(item));
    try {
      const c = await store.create(record, events);
      if (c.created) {
        index.note({ value: c.record, revision: c.revision });
        if (node) this.#won(node, { value: c.record, revision: c.revision });
      }
      resolve(resultOf(c.record, c.created, item));
    } catch (err) {
      resolve(errorOf(item.id, toApiError(err)));
    }
  }

  /** Assign a queued job by CAS on the revision the table holds (a stale one is re-read and re-decided). */
  async #assign(r: JobRecord, node: string, assign: (node: string) => JobEvent): Promise<void> {
    const { store, index } = this.placer.deps.jobs();
    const done = await store.apply(r.id, (c) => (c.state === 'queued' ? assign(node) : null), index.versioned(r.id)).catch((err) => {
      this.placer.deps.log(`dispatch: could not assign job ${r.id}: ${(err as Error).message}`);
      return null;
    });
    if (!done?.changed) return;
    index.note({ value: done.record, revision: done.revision });
    this.#won(node, { value: done.record, revision: done.revision });
  }

  #won(node: string, job: Versioned<JobRecord>): void {
    const now = this.placer.clock.now();
    this.#lastWin.set(node, now);
    this.#wins.set(node, [...(this.#wins.get(node) ?? []).filter((t) => now - t < defaults.recentWinsMs), now]);
    this.#deliveries.add(node, job);
  }

  /** Every ready node with what it holds now (the table's assigned and running jobs) and its credit. */
  #nodes(now: number): NodeState[] {
    const perSlot = this.#runTimes.perSlot;
    return this.placer.cluster.ready.map((n) => {
      const holdings = this.#held.get(n.id);
      const inIo = [...(holdings?.keys() ?? [])].filter((id) => this.#inIo.has(id)).length;
      // Jobs waiting on I/O within the node's I/O slots hold no compute slot.
      const computing = (holdings?.size ?? 0) - Math.min(inIo, n.ioSlots);
      const h = { count: holdings?.size ?? 0, usage: [...(holdings?.values() ?? [])].reduce((a, u) => addUsage(a, u), noUsage) };
      const capacity = capacityOf(n);
      return {
        id: n.id,
        slots: n.slots,
        credit: Math.max(0, n.slots * perSlot - computing),
        running: h.count,
        speed: n.speed,
        types: new Set(n.types),
        capacity,
        freeUsage: addUsage(capacity, h.usage, -1),
        recentWins: (this.#wins.get(n.id) ?? []).filter((t) => now - t < defaults.recentWinsMs).length,
        idleMs: now - (this.#lastWin.get(n.id) ?? now),
      };
    });
  }

  /** What preemption needs of the nodes: their free memory and GPUs. */
  #bids(nodes: NodeState[]): NodeBid[] {
    return nodes.map((n) => ({ node: n.id, free: n.credit, freeUsage: n.freeUsage, bids: [] }));
  }
}

const notDispatching = () => new ApiError(503, 'starting', 'this node no longer dispatches (a failover): try again');

function errorOf(id: string, err: ApiError): IntakeResult {
  return { id, error: { status: err.status, code: err.code, message: err.message } };
}

function resultOf(stored: JobRecord, created: boolean, item: IntakeItem): IntakeResult {
  if (!created) {
    try {
      sameSubmit(stored, item);
    } catch (err) {
      return errorOf(item.id, err as ApiError);
    }
  }
  return { id: stored.id, state: stored.state, created };
}

function offeredOf(r: JobRecord, now: number): OfferedJob {
  return {
    id: r.id,
    type: r.type,
    priority: effectivePriority(r, now),
    lastNode: lastAttempt(r)?.node ?? null,
    ...(r.requires ? { requires: r.requires } : {}),
  };
}
