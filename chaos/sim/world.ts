// A simulated cluster: N node processes, each the real node assembly
// (node/node.wiring.ts: node machine, leases, coordinator, leader duties, job
// store, runner, index) on a virtual clock view, talking to MemKv buckets and to
// each other through the simulated network. Faults are methods; `finish()` stops
// them, lets the cluster converge and judges the history with the checker.
import { simDefaults } from '../defaults.ts';
import { defaultPreemption } from '../../policies/preemption.ts';
import { auctionPolicy, dispatchPolicy } from '../../policies/placement.ts';
import { heuristicScorer } from '../../policies/scorer.ts';
import type { SnapshotFrom } from 'xstate';
import { coordinatorMachine } from '../../machines/coordinator.machine.ts';
import type { JobSpec } from '../../machines/job.machine.ts';
import { leaseTiming, leaseValidAt } from '../../machines/lease.rules.ts';
import { type WiredNode, wireNode } from '../../node/node.wiring.ts';
import { defaults } from '../../base/defaults.ts';
import { type Reply, serveRequest } from '../../nats/service.ts';
import { type EndpointName, jobRecordSchema, submitReply } from '../../api/contract.ts';
import { decodeJson, encodeJson } from '../../store/codec.ts';
import { type Transition, transitionRecorder } from '../../nats/events.ts';
import { names } from '../../nats/subjects.ts';
import { keys } from '../../store/keys.ts';
import { readLease } from '../../store/lease.records.ts';
import { simHandlersOf } from './handlers.ts';
import { MemKv } from './memkv.ts';
import { BrokenCasKv, type SimVariant, type WorldOptions } from './world.options.ts';
import { type ClockView, SimClock } from './clock.ts';
import type { SimPartitionMode } from '../faults.ts';
import { clientSubmit, clientWait, harnessRecorder, processKilled } from '../history.ts';
import { type Conn, prng, SimNet } from './net.ts';
import { simBucket, simIntakeWire, simNotify, simPlacement } from './net.messages.ts';

export type { SimVariant, WorldOptions };

type SimNode = { instance: string; pid: number; conn: Conn; view: ClockView; wired: WiredNode };
/** A node's host: its id, its processes so far, and its wall clock's skew (it outlives restarts). */
type Slot = { id: string; incarnations: number; node: SimNode | null; state: 'up' | 'crashed' | 'exited'; skewMs: number };

/** The one simulated node with a GPU. */
export const simGpuNode = 'n1';

/** Jan 1st 2025, so that wall times in a failure report look like times. */
const epochMs = 1_735_689_600_000;

export class SimWorld {
  readonly options: Required<Omit<WorldOptions, 'variant' | 'inspect'>> & Pick<WorldOptions, 'inspect'> & { variant: SimVariant };
  readonly clock: SimClock;
  readonly net: SimNet;
  readonly rng: () => number;
  readonly buckets: { leases: MemKv; jobs: MemKv; checkpoints: MemKv };
  readonly history: Transition[] = [];
  /** Code under test threw where a real process would have died. */
  readonly errors: string[] = [];
  /** The last log lines of every node (for failure reports). */
  readonly logs: string[] = [];
  readonly slots: Slot[];
  /** Job specs submitted (accepted or not). */
  readonly submitted = new Map<string, JobSpec>();
  /** What the harness itself saw (kills, answers to the client), as history transitions. */
  readonly #observe = harnessRecorder(() => this.clock.now());
  /** Submits whose create has not answered yet (it may still land), by the connection of the node serving them. */
  readonly #submitting = new Set<{ conn: Conn }>();
  /** Once faults stop, a process that exits (a drain in progress) is started again, as a supervisor would. */
  supervised = false;

  constructor(options: WorldOptions) {
    this.options = {
      ttlMs: options.ttlMs ?? simDefaults.leaseTtlMs,
      slots: options.slots ?? simDefaults.slots,
      seed: options.seed,
      nodes: options.nodes,
      variant: options.variant ?? {},
      inspect: options.inspect,
      placement: options.placement ?? 'dispatch',
      clockSkewMs: options.clockSkewMs ?? simDefaults.clockSkewMs,
    };
    this.clock = new SimClock(epochMs);
    this.clock.onError = (err) => this.errors.push(`timer threw: ${(err as Error)?.stack ?? String(err)}`);
    this.rng = prng(options.seed);
    this.net = new SimNet(this.clock, this.rng);
    const Kv = this.options.variant.casIgnoresRevision ? BrokenCasKv : MemKv;
    const n = names();
    this.buckets = {
      leases: new Kv(n.leasesBucket, { ttlMs: this.options.ttlMs, clock: this.clock }),
      jobs: new Kv(n.jobsBucket, { clock: this.clock, log: true }),
      checkpoints: new Kv(n.checkpointsBucket, { clock: this.clock }),
    };
    // Skews from their own generator: the network's draws stay as they were for a seed.
    const skew = prng(options.seed ^ 0x5eed);
    const maxSkew = this.options.clockSkewMs;
    this.slots = Array.from(
      { length: options.nodes },
      (_, i) => ({
        id: `n${i + 1}`,
        incarnations: 0,
        node: null,
        state: 'crashed' as const,
        skewMs: Math.round((2 * skew() - 1) * maxSkew),
      }),
    );
  }

  get timing() {
    return leaseTiming(this.options.ttlMs);
  }

  log(line: string): void {
    this.logs.push(`${this.clock.now() - epochMs} ${line}`);
    if (this.logs.length > 400) this.logs.shift();
  }

  /** Boot every node and let them elect a leader. */
  async start(warmupMs = 300): Promise<void> {
    for (const s of this.slots) this.spawn(s);
    await this.clock.advance(warmupMs);
  }

  /** A new process (a new instance) for a node id. */
  spawn(slot: Slot): void {
    const k = ++slot.incarnations;
    const instance = `${slot.id}-${k}`;
    const view = this.clock.view(slot.skewMs);
    const conn = this.net.connect(slot.id, instance, view);
    const pid = 1000 + 100 * Number(slot.id.slice(1)) + k;
    const recorder = transitionRecorder({
      node: slot.id,
      instance,
      pid,
      // Stamped by the node's own clock (a write carries its writer's decision time), judged in true time.
      clock: view,
      sink: (t) => {
        if (!conn.dead) this.history.push(slot.skewMs === 0 ? t : { ...t, wall: t.wall - slot.skewMs });
      },
    });
    const kv = (m: MemKv) => simBucket(this.net, conn, m);
    const wired = wireNode({
      nodeId: slot.id,
      instance,
      // The first node alone has a GPU and a label: jobs that require it wait (with a reason) while it is down.
      capacity: {
        slots: this.options.slots,
        ioSlots: 0,
        memMb: null,
        gpu: slot.id === simGpuNode ? 1 : 0,
        labels: slot.id === simGpuNode ? { zone: 'edge' } : {},
      },
      preemption: defaultPreemption,
      policy: this.options.placement === 'dispatch' ? dispatchPolicy(heuristicScorer) : auctionPolicy(),
      ...(this.options.placement === 'dispatch' ? { dispatch: { wire: simIntakeWire(this.net, conn), serveReads: () => () => {} } } : {}),
      random: this.rng,
      speed: 1,
      probeConfirmMs: defaults.probeConfirmMs,
      inspect: this.options.inspect,
      handlers: simHandlersOf(slot.id === simGpuNode),
      clock: view,
      fastPath: true,
      ...(this.options.variant.noCutOffFence ? { fence: { cutOffMs: 1e9, reapGraceMs: 0 } } : {}),
      log: (msg) => this.log(`${instance}: ${msg}`),
      bootstrap: async () => ({
        leases: kv(this.buckets.leases),
        jobs: kv(this.buckets.jobs),
        checkpoints: kv(this.buckets.checkpoints),
        leaseTtlMs: this.options.ttlMs,
      }),
      probe: (holder) => this.net.ping(conn, holder),
      placement: simPlacement(this.net, conn),
      notify: simNotify(this.net, conn),
      recorder,
      advert: { pid, host: 'sim', runtime: 'sim', startedAt: view.now(), policy: heuristicScorer.name, placement: this.options.placement },
    });
    const node: SimNode = { instance, pid, conn, view, wired };
    conn.inbox = wired.inbox;
    conn.crash = () => this.kill(this.slots.indexOf(slot));
    conn.onStatus = (s) => wired.connection(s === 'reconnected');
    wired.actor.subscribe({
      next: (snap) => {
        if (snap.status !== 'done' || conn.dead) return;
        if (snap.value === 'failed') this.errors.push(`${instance} failed: ${snap.context.error}`);
        // The process exits once its node actor is done (drained, or failed).
        view.setTimeout(() => this.#exit(slot, node), 0);
      },
      error: (err) => {
        if (conn.dead) return;
        this.errors.push(`${instance}: node actor failed: ${(err as Error)?.stack ?? String(err)}`);
        view.setTimeout(() => this.#exit(slot, node), 0);
      },
    });
    slot.node = node;
    slot.state = 'up';
    wired.actor.start();
  }

  #exit(slot: Slot, node: SimNode): void {
    if (node.conn.dead) return;
    node.wired.actor.stop();
    node.wired.stop();
    this.net.exit(node.conn);
    if (slot.node !== node) return;
    slot.state = 'exited';
    if (this.supervised) this.spawn(slot);
  }

  /** The slot's live process, if any. */
  live(i: number): SimNode | null {
    const s = this.slots[i];
    return s && s.state === 'up' && s.node && !s.node.conn.dead ? s.node : null;
  }

  // ---- faults ----

  kill(i: number): boolean {
    const s = this.slots[i];
    const n = this.live(i);
    if (!s || !n) return false;
    this.net.kill(n.conn);
    this.history.push(this.#observe({ kind: 'process', actor: n.instance, event: processKilled, data: { pid: n.pid } }));
    n.wired.actor.stop();
    n.wired.stop();
    s.state = 'crashed';
    return true;
  }

  /** Crash whichever process leads now (holds a valid leader lease). */
  leaderIndex(): number | null {
    let best: { i: number; epoch: number } | null = null;
    this.slots.forEach((_, i) => {
      const n = this.live(i);
      const c = n?.wired.actor.getSnapshot().children.coordinator?.getSnapshot() as SnapshotFrom<typeof coordinatorMachine> | undefined;
      if (
        n && c && c.matches({ active: 'leader' }) && leaseValidAt(c.context, n.view.mono()) &&
        (best === null || (c.context.epoch ?? 0) > best.epoch)
      ) {
        best = { i, epoch: c.context.epoch ?? 0 };
      }
    });
    return (best as { i: number } | null)?.i ?? null;
  }

  /** The node the leader lease names as its warm standby, if it is up. */
  async standbyIndex(): Promise<number | null> {
    const lease = await readLease(this.buckets.leases, keys.leader);
    const i = this.slots.findIndex((s) => s.id === lease?.value.standby);
    return i >= 0 && this.live(i) ? i : null;
  }

  /** Arm the leader: it dies as it is about to send the assignments of records it just committed. */
  crashDispatcher(): number | null {
    const i = this.leaderIndex();
    if (i === null) return null;
    this.live(i)!.conn.crashBeforeAssign = true;
    return i;
  }

  /** A supervisor starts the node again: a new instance of the same node id. */
  restart(i: number): boolean {
    const s = this.slots[i];
    if (!s) return false;
    if (s.state === 'up' && s.node) {
      // Still shutting down (draining): the supervisor kills it first.
      this.kill(i);
    }
    this.spawn(s);
    return true;
  }

  pause(i: number): boolean {
    const n = this.live(i);
    if (!n || n.view.paused) return false;
    this.net.pause(n.conn);
    return true;
  }

  resume(i: number): boolean {
    const n = this.live(i);
    if (!n || !n.view.paused) return false;
    this.net.resume(n.conn);
    return true;
  }

  /** Blackhole (every byte held both ways until heal) or reset (the connection dies now, pings answer "no responders", no reconnect until heal). */
  partition(i: number, mode: SimPartitionMode): boolean {
    const n = this.live(i);
    if (!n || n.conn.split || n.conn.cut) return false;
    if (mode === 'blackhole') this.net.split(n.conn);
    else this.net.disconnect(n.conn);
    return true;
  }

  heal(i: number): boolean {
    const n = this.live(i);
    if (!n || !(n.conn.split || n.conn.cut)) return false;
    this.net.heal(n.conn);
    return true;
  }

  /** SIGTERM: the node drains (hands its jobs back, steps down, releases its lease) and exits. */
  drain(i: number): boolean {
    const n = this.live(i);
    if (!n) return false;
    n.view.post(() => n.wired.actor.send({ type: 'drain' }));
    return true;
  }

  /**
   * A network fault on a live node's connection: lose its next requests (before
   * they apply) or replies (after), duplicate its next messages, or slow it down.
   */
  faultLink(i: number, fault: (c: Conn) => void): boolean {
    const n = this.live(i);
    if (!n) return false;
    fault(n.conn);
    return true;
  }

  // ---- the API, as a node serves it ----

  /** A node that can serve an API request now, trying from `via` on (a queue group picks a responsive member). */
  #server(via: number): SimNode | null {
    for (let k = 0; k < this.slots.length; k++) {
      const n = this.live((via + k) % this.slots.length);
      if (n && !n.view.paused && n.conn.open && !n.conn.split && n.wired.parts()) return n;
    }
    return null;
  }

  /** Serve one API request on a node, as the micro service does (size limit, validation, the endpoint); resolves once answered. */
  #request(n: SimNode, endpoint: EndpointName, body: unknown): Promise<Reply> {
    return serveRequest(endpoint, n.wired.api[endpoint]!, encodeJson(body));
  }

  /** `jobs.submit` through the real endpoint: idempotent by id, 409 for another body, 413 for a big input. */
  submit(spec: JobSpec, via: number): boolean {
    this.submitted.set(spec.id, spec);
    const n = this.#server(via);
    if (!n) return false;
    const pending = { conn: n.conn };
    this.#submitting.add(pending);
    const { id, type, input, priority, maxAttempts, timeoutMs, requires } = spec;
    void this.#request(n, 'jobs.submit', { id, type, input, priority, maxAttempts, timeoutMs, ...(requires ? { requires } : {}) }).then(
      (r) => {
        if (!r.ok) return this.log(`${n.instance}: submit of ${id} answered ${r.error.status}: ${r.error.message}`);
        this.history.push(
          this.#observe({ kind: 'client', actor: id, event: clientSubmit, data: decodeJson(submitReply, r.data, 'submit reply') }),
        );
        // A client waits for it (through the node it submitted to): what the wait says must be what was committed.
        void this.#request(n, 'jobs.wait', { id, timeoutMs: simDefaults.waitTimeoutMs }).then((w) => {
          if (w.ok) {
            this.history.push(
              this.#observe({
                kind: 'client',
                actor: id,
                event: clientWait,
                data: { record: decodeJson(jobRecordSchema, w.data, 'wait reply') },
              }),
            );
          }
        });
      },
    ).finally(() => this.#submitting.delete(pending));
    return true;
  }

  /** `jobs.cancel` through the real endpoint: cancel by CAS, then tell the owner to stop it. */
  cancel(id: string, via: number): boolean {
    const n = this.#server(via);
    if (!n) return false;
    void this.#request(n, 'jobs.cancel', { id });
    return true;
  }

  async advance(ms: number): Promise<void> {
    await this.clock.advance(ms);
  }

  // ---- the end of a case ----

  /** A submit is still unanswered by a live node (its create may yet land). */
  submitting(): boolean {
    return [...this.#submitting].some((p) => !p.conn.dead);
  }

  /** Stop every process (after a case, so nothing lingers). */
  dispose(): void {
    this.slots.forEach((s) => {
      const n = s.node;
      if (!n || n.conn.dead) return;
      n.view.kill();
      n.conn.dead = true;
      n.wired.actor.stop();
      n.wired.stop();
    });
  }
}
