// The leader's cached view of the live nodes (from their lease adverts): the
// job types they handle and how many are ready. Recovery refreshes it; the
// placement loop reads it and confirms from the leases before acting on a miss.
import type { Bucket } from '../../store/bucket.ts';
import { readCluster } from '../../store/lease.records.ts';
import type { ClusterView } from '../../api/contract.ts';
import { type NodeCapacity, nodeCapacity } from '../../policies/requirements.ts';

/** A node's capacity as its advert says (no memory figure: no limit). */
export const capacityOf = (n: ClusterView['nodes'][number]): NodeCapacity => nodeCapacity(n);

/** Job types some live node handles, by their adverts. */
export const typesOf = (view: ClusterView) => new Set(view.nodes.flatMap((x) => x.types));

/** What the leader last read of the live nodes: the job types they handle, and how many are ready (each answers an offer). */
export class ClusterCache {
  types: Set<string> | null = null;
  /** The ready nodes, as their adverts said (each answers an offer). */
  ready: ClusterView['nodes'] = [];
  /** Every live node (any state), and when (monotonic ms) the view was read. */
  nodes: ClusterView['nodes'] = [];
  readAt = -Infinity;
  readonly #leases: () => Bucket;
  readonly #mono: () => number;
  constructor(leases: () => Bucket, mono: () => number) {
    this.#leases = leases;
    this.#mono = mono;
  }
  get readyNodes(): number {
    return this.ready.length;
  }
  note(view: ClusterView): ClusterView {
    this.ready = view.nodes.filter((x) => x.state === 'ready');
    this.nodes = view.nodes;
    this.types = typesOf(view);
    this.readAt = this.#mono();
    return view;
  }
  async refresh(): Promise<ClusterView> {
    return this.note(await readCluster(this.#leases()));
  }
  /** Read the leases again unless the view is younger than `maxAgeMs`. */
  async fresh(maxAgeMs: number): Promise<void> {
    if (this.#mono() - this.readAt >= maxAgeMs) await this.refresh();
  }
}
