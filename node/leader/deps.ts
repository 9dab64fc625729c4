// What the leader's duties are given (the node's buckets, lease checks,
// transport, policy) and the placement loop's own state between rounds. Its
// own module so the duties, the placement loop and its helpers import it
// rather than each other.
import type { LeaseHolder } from '../../machines/lease.machine.ts';
import type { PlacementPolicy } from '../../policies/placement.ts';
import type { PreemptionRules } from '../../policies/preemption.ts';
import type { Bucket } from '../../store/bucket.ts';
import type { JobStore } from '../../store/job.store.ts';
import type { Probe } from '../../store/lease.records.ts';
import type { PlacementTransport } from '../../nats/placement.ts';
import type { Clock } from '../../base/time.ts';
import type { JobIndex } from '../job.index.ts';
import type { Log } from '../log.ts';
import type { ClusterCache } from './cluster.cache.ts';

export type DutyDeps = {
  leases: () => Bucket;
  jobs: () => { store: JobStore; index: JobIndex };
  checkpoints: () => Bucket;
  /** How long a finished job's record and checkpoint stay (a job's own `retentionMs` wins). */
  retentionMs: number;
  self: LeaseHolder;
  log: Log;
  fastPath: boolean;
  /** How long after a node lease term is seen ended its jobs move (`defaults.reapGraceMs`). */
  reapGraceMs: number;
  /** Our leader lease is still valid, by the real clock, right now. */
  leading: () => boolean;
  /** Liveness of a node lease's holder (the fast path's evidence). */
  probe: Probe;
  /** Offers, bids, assignments and the "jobs queued" hint. */
  transport: PlacementTransport;
  policy: PlacementPolicy;
  /** When a queued job may take a running job's slot. */
  preemption: PreemptionRules;
  /** Event times and the placement timer. */
  clock?: Clock;
  /** Where the dispatcher's candidate sampling draws from (default Math.random; the simulation's is seeded). */
  random?: () => number;
  /** Told of each auction run: ms from offer to assignments written, jobs offered, jobs assigned (metrics). */
  onAuction?: (ms: number, offered: number, awarded: number) => void;
  /** Told of each dead node's lease this leader deleted (for the history). */
  onReap?: (holder: LeaseHolder, epoch: number) => void;
};

export type Placer = {
  deps: DutyDeps;
  cluster: ClusterCache;
  clock: Clock;
  /** Assignments this leader wrote that its index may not show yet (job → node): a placement without bids counts them as load. */
  awarded: Map<string, string>;
  /** `pull`: the job attempts this leader already put on the work queue. */
  enqueued: Set<string>;
  /** Running jobs this leader told to yield (job → attempt): not picked as victims again while they hand back. */
  yielding: Map<string, number>;
  /** Placement rounds run so far (a round's id names the leader's instance and this count). */
  rounds: number;
};
