// A node's side of placement: a bid for each offered job it can run (scored by
// the placement policy), assigned jobs handed to the runner, cancelled ones
// stopped. Transport-free: a real node wires it to NATS (nats/placement.ts),
// the simulation to its network.
import type { PlacementPolicy } from '../policies/placement.ts';
import type { NodeCapacity, Usage } from '../policies/requirements.ts';
import { defaults } from '../base/defaults.ts';
import type { NodeInbox } from '../nats/placement.ts';
import type { Bid } from '../nats/messages.ts';
import type { Clock } from '../base/time.ts';
import type { Versioned } from '../store/job.store.ts';
import type { JobRecord } from '../api/contract.ts';

export type InboxDeps = {
  nodeId: string;
  slots: number;
  /** This node's relative speed (a bid feature; 1 unless `--speed` says otherwise). */
  speed?: number;
  /** Labels, memory and GPUs this node offers. */
  capacity: NodeCapacity;
  /** Job types this node handles. */
  handles: (type: string) => boolean;
  /** Only a ready node bids, or takes assignments. */
  ready: () => boolean;
  /** This node's lease term now (null: it holds none). */
  epoch: () => number | null;
  runner: () => {
    readonly free: number;
    readonly running: number;
    readonly freeUsage: Usage;
    start(id: string, known?: Versioned<JobRecord>): Promise<void>;
    stop(id: string, reason: 'cancelled'): void;
    handOver(victims: Array<{ id: string; attempt: number }>, jobs: Array<Versioned<JobRecord>>, graceMs?: number): void;
  } | null;
  clock: Clock;
  policy: PlacementPolicy;
};

export function nodeInbox(deps: InboxDeps): NodeInbox {
  const wins: number[] = [];
  let lastWin = deps.clock.now();
  return {
    // Every ready node answers (maybe with no bids), so the leader can stop waiting once all have.
    offer(offer) {
      const runner = deps.runner();
      if (!runner || !deps.ready()) return null;
      const now = deps.clock.now();
      while (wins.length && now - wins[0]! > defaults.recentWinsMs) wins.shift();
      const self = {
        nodeId: deps.nodeId,
        slots: deps.slots,
        free: runner.free,
        running: runner.running,
        speed: deps.speed ?? 1,
        recentWins: wins.length,
        idleMs: now - lastWin,
        handles: deps.handles,
        capacity: deps.capacity,
        freeUsage: runner.freeUsage,
      };
      const free = runner.free;
      // Memory without a limit is left out: the leader then counts only slots.
      const freeUsage = Number.isFinite(self.freeUsage.memMb) ? self.freeUsage : undefined;
      const bid = (b: Bid['bids']): Bid => ({ node: deps.nodeId, free, ...(freeUsage ? { freeUsage } : {}), bids: b });
      const bids = deps.policy.bid(offer.jobs, self);
      return Array.isArray(bids) ? bid(bids) : bids.then(bid);
    },
    assign(jobs, preempt, epoch) {
      const runner = deps.runner();
      // Not ready (joining, reconnecting, draining): no answer yet; the dispatcher sends them again.
      if (!runner || !deps.ready()) return { accepted: [], refused: [] };
      // Assigned in a lease term of ours that has ended (we were fenced and re-joined): recovery requeues them.
      if (epoch !== undefined && epoch !== null && epoch !== deps.epoch()) {
        return {
          accepted: [],
          refused: jobs.map((j) => ({ id: j.value.id, reason: `assigned in lease term ${epoch}, now ${deps.epoch()}` })),
        };
      }
      for (const _ of jobs) {
        lastWin = deps.clock.now();
        wins.push(lastWin);
      }
      // A preemption: the jobs that yield free the slots these start in.
      if (preempt?.preempt?.length) runner.handOver(preempt.preempt, jobs, preempt.graceMs);
      else for (const job of jobs) void runner.start(job.value.id, job);
      return { accepted: jobs.map((j) => j.value.id), refused: [] };
    },
    cancel(ids) {
      for (const id of ids) deps.runner()?.stop(id, 'cancelled');
    },
  };
}
