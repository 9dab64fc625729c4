// The leader's cached view of the live nodes (from their lease adverts): the
// job types they handle and how many are ready. Recovery refreshes it; the
// placement loop reads it and confirms from the leases before acting on a miss.
import type { Bucket } from '../streams/bucket.ts';
import { type ClusterView, readCluster } from '../streams/lease.records.ts';

/** Job types some live node handles, by their adverts. */
export const typesOf = (view: ClusterView) => new Set(view.nodes.flatMap((x) => x.types));

/** What the leader last read of the live nodes: the job types they handle, and how many are ready (each answers an offer). */
export class ClusterCache {
  types: Set<string> | null = null;
  /** The ready nodes, as their adverts said (each answers an offer). */
  ready: ClusterView['nodes'] = [];
  readonly #leases: () => Bucket;
  constructor(leases: () => Bucket) {
    this.#leases = leases;
  }
  get readyNodes(): number {
    return this.ready.length;
  }
  note(view: ClusterView): ClusterView {
    this.ready = view.nodes.filter((x) => x.state === 'ready');
    this.types = typesOf(view);
    return view;
  }
  async refresh(): Promise<ClusterView> {
    return this.note(await readCluster(this.#leases()));
  }
}
