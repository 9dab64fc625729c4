// The leader's cached view of the live nodes (from their lease adverts): the
// job types they handle and how many are ready. Recovery refreshes it; the
// placement loop reads it and confirms from the leases before acting on a miss.
import { type Bucket, caughtUp, type Watch } from '../../store/bucket.ts';
import { clusterNodeOf, decodeLease, readCluster } from '../../store/lease.records.ts';
import { keys } from '../../store/keys.ts';
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
  /** Job types' concurrency limits across the cluster, as the live nodes declare them (the lowest where they differ). */
  get limits(): Map<string, number> {
    const out = new Map<string, number>();
    for (const n of this.nodes) {
      for (const [t, l] of Object.entries(n.limits ?? {})) out.set(t, Math.min(l, out.get(t) ?? Infinity));
    }
    return out;
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
  /**
   * Follow the node leases (the dispatcher, while it dispatches): each renewal's advert updates the view, and
   * a node that becomes ready, stops being ready or comes back under a new lease term calls `changed` (a
   * joining node gets work at once, not at the next read). A lease that expires shows no event: recovery's
   * reads drop it. Returns the stop.
   */
  follow(changed: () => void): () => void {
    let stopped = false;
    let watch: Watch | null = null;
    void this.#leases().watch(keys.nodes).then(async (w) => {
      if (stopped) return w.stop();
      watch = w;
      for await (const e of w) {
        if (e === caughtUp) continue;
        let node: ClusterView['nodes'][number] | null = null;
        try {
          node = e.operation === 'PUT' ? clusterNodeOf(decodeLease(e.key, e.value, e.revision, e.created)) : null;
        } catch {
          continue; // an unreadable lease: the next read says what it is
        }
        const id = node?.id ?? e.key.slice(keys.node('').length);
        const before = this.ready.find((x) => x.id === id);
        this.nodes = [...this.nodes.filter((x) => x.id !== id), ...(node ? [node] : [])].sort((a, b) => a.id.localeCompare(b.id));
        this.ready = this.nodes.filter((x) => x.state === 'ready');
        this.types = new Set(this.nodes.flatMap((x) => x.types));
        const now = node?.state === 'ready' ? node : undefined;
        if (!before !== !now || (before && now && before.epoch !== now.epoch)) changed();
      }
    }).catch(() => {});
    return () => {
      stopped = true;
      watch?.stop();
    };
  }
  /** Read the leases again unless the view is younger than `maxAgeMs`. */
  async fresh(maxAgeMs: number): Promise<void> {
    if (this.#mono() - this.readAt >= maxAgeMs) await this.refresh();
  }
}
