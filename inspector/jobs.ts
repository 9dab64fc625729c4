// The inspector's jobs table, pure (no DOM, no NATS; shared by its server and
// its page): one compact row per job record, kept in a bounded map, and the
// rows a filter selects at a point of the timeline.
import type { JobRecord } from '../api/contract.ts';

const terminal = new Set(['succeeded', 'failed', 'cancelled']);
/** A job state path (`succeeded`, `running.computing`) that is final. */
export const isTerminalState = (to: string) => terminal.has(to.split('.')[0]!);

/** What the table shows of a job: its record without input, result or attempts. */
export type JobRow = {
  id: string;
  type: string;
  /** The job machine's state path: `queued`, `running.computing`, … */
  state: string;
  owner: string | null;
  priority: number;
  attempt: number;
  progress: number;
  createdAt: number;
  updatedAt: number;
  error: string | null;
  pendingReason: string | null;
};

/** The job machine's state path a record is in: `running.computing`, `queued`, … */
export const recordPath = (
  r: Pick<JobRecord, 'state' | 'phase'>,
) => (r.state === 'running' ? `running.${r.phase ?? 'computing'}` : r.state);

export const jobRow = (r: JobRecord): JobRow => ({
  id: r.id,
  type: r.type,
  state: recordPath(r),
  owner: r.owner,
  priority: r.priority,
  attempt: r.attempt,
  progress: r.progress,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
  error: r.error === null ? null : r.error.slice(0, 300),
  pendingReason: r.pendingReason,
});

/** The newest row of each job, at most `max` of them: the least recently updated go first. */
export class JobRows {
  readonly #rows = new Map<string, JobRow>();
  readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  /** False when the row is older than the one kept. */
  put(row: JobRow): boolean {
    const had = this.#rows.get(row.id);
    if (had && had.updatedAt > row.updatedAt) return false;
    this.#rows.delete(row.id);
    this.#rows.set(row.id, row);
    if (this.#rows.size > this.max) this.#rows.delete(this.#rows.keys().next().value!);
    return true;
  }
  remove(id: string): boolean {
    return this.#rows.delete(id);
  }
  clear(): void {
    this.#rows.clear();
  }
  get(id: string): JobRow | undefined {
    return this.#rows.get(id);
  }
  get size(): number {
    return this.#rows.size;
  }
  values(): IterableIterator<JobRow> {
    return this.#rows.values();
  }
}

export const jobStateFilters = ['all', 'active', 'queued', 'assigned', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export const jobSorts = ['updated', 'created', 'priority'] as const;

export type JobFilter = {
  /** Part of the id or the type (case-insensitive). */
  text: string;
  state: (typeof jobStateFilters)[number];
  /** '' for any. */
  type: string;
  /** '' for any; the node that owns or last owned it. */
  node: string;
  minPriority: number;
  /** Only jobs submitted within this many ms of `now` (null: any time). */
  sinceMs: number | null;
  sort: (typeof jobSorts)[number];
};

export const noFilter: JobFilter = { text: '', state: 'all', type: '', node: '', minPriority: 0, sinceMs: null, sort: 'updated' };

const stateMatches = (want: JobFilter['state'], state: string) =>
  want === 'all' || (want === 'active' ? !isTerminalState(state) : state.split('.')[0] === want);

/**
 * The rows the filter selects, sorted, with each one's state at the moment shown:
 * `stateAt` gives the state the timeline has for a job then (null: the job did
 * not exist yet: left out), `now` is that moment's wall time.
 */
export function selectJobs(
  rows: Iterable<JobRow>,
  f: JobFilter,
  now: number,
  stateAt: (row: JobRow) => string | null = (r) => (r.createdAt > now ? null : r.state),
): Array<{ row: JobRow; state: string }> {
  const text = f.text.trim().toLowerCase();
  const out: Array<{ row: JobRow; state: string }> = [];
  for (const row of rows) {
    if (f.sinceMs !== null && row.createdAt < now - f.sinceMs) continue;
    if (row.priority < f.minPriority) continue;
    if (f.type && row.type !== f.type) continue;
    if (f.node && row.owner !== f.node) continue;
    if (text && !row.id.toLowerCase().includes(text) && !row.type.toLowerCase().includes(text)) continue;
    const state = stateAt(row);
    if (state === null || !stateMatches(f.state, state)) continue;
    out.push({ row, state });
  }
  const key = f.sort === 'created'
    ? (x: JobRow) => x.createdAt
    : f.sort === 'priority'
    ? (x: JobRow) => x.priority * 1e14 + x.createdAt
    : (x: JobRow) => x.updatedAt;
  return out.sort((a, b) => key(b.row) - key(a.row) || (a.row.id < b.row.id ? -1 : 1));
}
