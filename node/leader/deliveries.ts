// The dispatcher's assignments on their way to the nodes: one message per node
// per round (all its new jobs), acknowledged; what is not acknowledged is sent
// again, backing off, for as long as the record still shows that assignment.
// A node takes each (job, attempt) once, so a resend costs it nothing.
import type { JobRecord } from '../../api/contract.ts';
import { lastAttempt } from '../../machines/job.machine.ts';
import { defaults } from '../../base/defaults.ts';
import type { Versioned } from '../../store/job.store.ts';
import type { Placer } from './deps.ts';

/** How long after its `tries`th sending a message goes again, unacknowledged: doubling, capped. */
const resendAfter = (tries: number) => Math.min(defaults.assignResendMaxMs, defaults.assignResendMs * 2 ** (tries - 1));

type Unacked = { job: Versioned<JobRecord>; tries: number; dueAt: number };
/** A cancel on its way to the node that held the job: sent until acknowledged, or its lease is gone. */
type Stop = { tries: number; dueAt: number };

export class Deliveries {
  readonly #placer: Placer;
  /** New assignments by node, then job id, not sent yet (this round's). */
  readonly #fresh = new Map<string, Map<string, Versioned<JobRecord>>>();
  /** Sent and not acknowledged yet, by node, then job id. */
  readonly #unacked = new Map<string, Map<string, Unacked>>();
  /** Cancels not acknowledged yet, by node, then job id. */
  readonly #stops = new Map<string, Map<string, Stop>>();
  #timer: unknown = null;
  #stopped = false;

  constructor(placer: Placer) {
    this.#placer = placer;
  }

  /** Send this assignment with the next flush, unless it is on its way already (sent, not yet acknowledged). */
  add(node: string, job: Versioned<JobRecord>): boolean {
    const sent = this.#unacked.get(node)?.get(job.value.id);
    if (sent && sent.job.value.attempt === job.value.attempt) return false;
    const fresh = this.#fresh.get(node) ?? new Map<string, Versioned<JobRecord>>();
    this.#fresh.set(node, fresh.set(job.value.id, job));
    return true;
  }

  /**
   * A job `node` held was cancelled: tell it, and again until it says it heard (the API's own word may be
   * lost, or go to a node that no longer has the job), so the handler stops and checkpoints no more.
   */
  cancel(node: string, id: string): void {
    if (!this.#placer.deps.transport.stop) return;
    const stops = this.#stops.get(node) ?? new Map<string, Stop>();
    this.#stops.set(node, stops);
    if (!stops.has(id)) this.#sendStops(node, [id], stops);
  }

  #sendStops(node: string, ids: string[], stops: Map<string, Stop>): void {
    const { deps, clock } = this.#placer;
    for (const id of ids) {
      const tries = (stops.get(id)?.tries ?? 0) + 1;
      stops.set(id, { tries, dueAt: clock.mono() + resendAfter(tries) });
    }
    void deps.transport.stop!(node, ids).then((heard) => {
      if (heard) { for (const id of ids) stops.delete(id); }
    }, () => {});
    this.#arm();
  }

  /** Send what is new: one message per node (and per lease term of it the assignments name). */
  flush(): void {
    for (const [node, jobs] of this.#fresh) this.#send(node, [...jobs.values()]);
    this.#fresh.clear();
  }

  /** A node's assignments, one message per term they name: a node refuses a term not its own, never a batch for another's sake. */
  #send(node: string, jobs: Array<Versioned<JobRecord>>): void {
    const byTerm = new Map<number | null, Array<Versioned<JobRecord>>>();
    for (const j of jobs) {
      const term = lastAttempt(j.value)?.nodeEpoch ?? null;
      byTerm.set(term, [...(byTerm.get(term) ?? []), j]);
    }
    for (const [epoch, batch] of byTerm) this.#sendTerm(node, epoch, batch);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.#placer.clock.clearTimeout(this.#timer);
  }

  #sendTerm(node: string, epoch: number | null, jobs: Array<Versioned<JobRecord>>): void {
    const { deps, clock } = this.#placer;
    const pending = this.#unacked.get(node) ?? new Map<string, Unacked>();
    this.#unacked.set(node, pending);
    for (const job of jobs) {
      const tries = (pending.get(job.value.id)?.tries ?? 0) + 1;
      pending.set(job.value.id, { job, tries, dueAt: clock.mono() + resendAfter(tries) });
    }
    void deps.transport.deliver!(node, { jobs, epoch }).then((ack) => {
      if (!ack) return; // no answer: sent again when due
      for (const id of [...ack.accepted, ...ack.refused.map((r) => r.id)]) pending.delete(id);
      for (const r of ack.refused) deps.log(`dispatch: ${node} refused job ${r.id}: ${r.reason}`);
    }, () => {});
    this.#arm();
  }

  /** Send again, per node in one message, what is due and still assigned as it was. */
  #resend(): void {
    this.#timer = null;
    if (this.#stopped || !this.#placer.deps.leading()) return;
    const { index } = this.#placer.deps.jobs();
    const now = this.#placer.clock.mono();
    for (const [node, pending] of this.#unacked) {
      const due: Array<Versioned<JobRecord>> = [];
      for (const [id, u] of pending) {
        const r = index.live.get(id);
        if (!r || r.state !== 'assigned' || r.owner !== node || r.attempt !== u.job.value.attempt) pending.delete(id);
        else if (u.dueAt <= now) due.push(index.versioned(id) ?? u.job);
      }
      if (due.length > 0) this.#send(node, due);
      if (pending.size === 0) this.#unacked.delete(node);
    }
    // Cancels go again while the node lives: once its lease is gone, so are its handlers.
    const live = new Set(this.#placer.cluster.nodes.map((x) => x.id));
    for (const [node, stops] of this.#stops) {
      const due = [...stops].filter(([, s]) => s.dueAt <= now).map(([id]) => id);
      if (!live.has(node)) stops.clear();
      else if (due.length > 0) this.#sendStops(node, due, stops);
      if (stops.size === 0) this.#stops.delete(node);
    }
    this.#arm();
  }

  #arm(): void {
    if (this.#timer !== null || this.#stopped || (this.#unacked.size === 0 && this.#stops.size === 0)) return;
    this.#timer = this.#placer.clock.setTimeout(() => this.#resend(), defaults.assignResendMs);
  }
}
