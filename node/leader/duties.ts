// What the leader does while it holds the lease: recovery (reap dead nodes,
// requeue what they owned and assignments never started) and placement (the
// auction loop, placement.loop.ts). Leadership is an optimisation: every write
// here is a CAS on one record, guarded by the job machine, so two leaders at
// once stay safe.
import { fromPromise } from 'xstate';
import type { DutyInput } from '../../machines/coordinator.machine.ts';
import { requeueDecision } from '../../machines/job.rules.ts';
import { lastAttempt } from '../../machines/job.machine.ts';
import { isCasConflict } from '../../store/bucket.ts';
import { defaults } from '../../base/defaults.ts';
import { readLease } from '../../store/lease.records.ts';
import { keys } from '../../store/keys.ts';
import { realClock } from '../../base/time.ts';
import { ClusterCache } from './cluster.cache.ts';
import { placementLoop } from './placement.loop.ts';
import { DispatchHost, dispatchLoop, type DispatchServing } from './dispatch.loop.ts';
import type { DutyDeps } from './deps.ts';

/**
 * The leader's duties, as the coordinator's actors: recovery and placement. With `dispatch` placement
 * (`serving` given) placement is the dispatcher's, whose host lives beside them for the whole term.
 */
export function leaderDuties(deps: DutyDeps, serving?: DispatchServing) {
  const cluster = new ClusterCache(deps.leases, () => (deps.clock ?? realClock).mono());
  if (deps.policy.dispatches && serving) {
    const host = new DispatchHost(deps, cluster, serving);
    return { recover: recoverDuty(deps, cluster), place: dispatchLoop(deps, host), host };
  }
  return { recover: recoverDuty(deps, cluster), place: placementLoop(deps, cluster), host: null };
}

/**
 * One recovery pass: reap the leases of nodes whose connection is gone ("no
 * responders"), so their jobs move soon instead of a TTL later; then send
 * back to the queue what `requeueDecision` says (dead or re-joined owners,
 * assignments nobody started in time). An owner's jobs move only once its
 * lease term has been seen ended for `reapGraceMs` (a holder cut off but alive
 * stops its handlers before that); a timer moves them when the grace is over.
 */
function recoverDuty(deps: DutyDeps, cluster: ClusterCache) {
  const clock = deps.clock ?? realClock;
  const grace = new TermGrace(deps.reapGraceMs);
  let wake: { at: number; timer: unknown } | null = null;
  // The leadership the latest pass ran under: a wake-up timer armed in an earlier leadership of this node runs
  // its pass under this one (were it to carry its own, the grace clocks would restart at every alternation).
  let leadership = 0;
  const requeue = async (): Promise<void> => {
    const leaderEpoch = leadership;
    const view = await cluster.refresh();
    const epochs = new Map(view.nodes.map((x) => [x.id, x.epoch]));
    const { store, index } = deps.jobs();
    await index.ready();
    grace.begin(leaderEpoch, clock.mono());
    let nextDue = Infinity;
    const moves: Array<Promise<unknown>> = [];
    for (const r of index.live.values()) {
      if (!deps.leading()) return;
      const q = requeueDecision(r, epochs, clock.now(), defaults.startTimeoutMs);
      if (!q) continue;
      if (q.event.type === 'job.orphan') {
        const wait = grace.remaining(`${r.owner}@${lastAttempt(r)?.nodeEpoch ?? '-'}`);
        if (wait > 0) {
          nextDue = Math.min(nextDue, wait);
          continue;
        }
      }
      // Decided on the index's copy: write only if the record still holds that attempt.
      moves.push(
        store.apply(r.id, (c) => (c.attempt === r.attempt ? { ...q.event, at: clock.now() } : null)).then((x) => {
          if (x?.changed && q.event.type === 'job.orphan') deps.log(`job ${r.id}: ${q.why}, requeued`);
        }),
      );
    }
    grace.end();
    if (nextDue < Infinity) {
      const at = clock.mono() + nextDue;
      if (!wake || wake.at > at) {
        if (wake) clock.clearTimeout(wake.timer);
        const timer = clock.setTimeout(() => {
          wake = null;
          if (deps.leading()) void requeue().catch((err) => deps.log(`recovery: ${(err as Error).message}`));
        }, nextDue);
        wake = { at, timer };
      }
    }
    // A write that failed is tried again on the next pass; say so, or a bucket that refuses writes looks like an idle leader.
    const failed = (await Promise.allSettled(moves)).filter((x) => x.status === 'rejected');
    if (failed.length) {
      deps.log(
        `recovery: ${failed.length} requeue write(s) failed (${(failed[0] as PromiseRejectedResult).reason?.message}); next pass retries`,
      );
    }
  };
  return fromPromise<void, DutyInput>(async ({ input }) => {
    leadership = input.epoch;
    await reapDeadNodes(deps);
    await requeue();
    await expireFinished(deps);
  });
}

/**
 * Retention: purge the records (and checkpoints) of jobs finished longer ago than they are kept, in batches,
 * for at most `expirePassMs` a pass (so deletions keep up with the rate jobs finish). A record is purged
 * only at the revision the index saw finish, then its checkpoint, so a job submitted again under the same id
 * meanwhile is left alone (a checkpoint whose removal fails stays: logged, ≤ 1 per job). The purge's marker is
 * removed later (`compactMarkers`). A record found already gone (its purge missed by a watch that lagged past
 * the marker's life) is dropped from the index.
 */
async function expireFinished(deps: DutyDeps): Promise<void> {
  const { store, index } = deps.jobs();
  const clock = deps.clock ?? realClock;
  const until = clock.mono() + defaults.expirePassMs;
  while (deps.leading() && clock.mono() < until) {
    const expired = index.expired(clock.now(), deps.retentionMs, defaults.expireBatch);
    if (expired.length === 0) break;
    let moved = 0;
    const done = await Promise.allSettled(expired.map(async ({ id, revision }) => {
      try {
        await store.kv.purge(keys.job(id), revision);
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        if (await store.kv.get(keys.job(id))) moved++; // moved on meanwhile: the next pass sees it as it is now
        else index.gone(id, revision);
        return;
      }
      // The record first: a job submitted again under this id meanwhile keeps its checkpoint. The checkpoint is
      // removed outright (no marker: nothing watches checkpoints), up to the revision read, so a newer one stays.
      const ckpt = await deps.checkpoints().get(keys.job(id));
      if (ckpt) await deps.checkpoints().compact(keys.job(id), ckpt.revision);
    }));
    const failed = done.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed.length) deps.log(`retention: ${failed.length} purge(s) failed (${failed[0]!.reason?.message})`);
    if (failed.length || moved) break;
  }
  await compactMarkers(deps);
}

/**
 * Remove the markers purges left in the jobs bucket, once watchers have had time to see them (`markerCompactAfterMs`,
 * or the retention if shorter), so nothing stays per finished job on any server version. Each removal is bounded by
 * the marker's revision: a record submitted again under the same id is never touched.
 */
async function compactMarkers(deps: DutyDeps): Promise<void> {
  const { store, index } = deps.jobs();
  const clock = deps.clock ?? realClock;
  const after = Math.min(defaults.markerCompactAfterMs, deps.retentionMs);
  const until = clock.mono() + defaults.expirePassMs;
  while (deps.leading() && clock.mono() < until) {
    const due = index.markers(clock.mono() - after, defaults.expireBatch);
    if (due.length === 0) return;
    const done = await Promise.allSettled(due.map(async ({ key, revision }) => {
      await store.kv.compact(key, revision);
      index.compacted(key, revision);
    }));
    const failed = done.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed.length) return deps.log(`retention: ${failed.length} marker removal(s) failed (${failed[0]!.reason?.message})`);
  }
}

/**
 * When this leader first saw each owner's lease term ended (by `owner@term`, monotonic ms): a term's jobs move
 * once it has been seen ended for `graceMs`. A new leadership starts every clock afresh (it cannot know when the
 * former leader saw them end); a term no longer seen is forgotten.
 */
export class TermGrace {
  readonly graceMs: number;
  #leaderEpoch: number | null = null;
  #firstSeen = new Map<string, number>();
  #seen = new Set<string>();
  #now = 0;
  constructor(graceMs: number) {
    this.graceMs = graceMs;
  }
  /** A pass begins, at `now`, under this leadership. */
  begin(leaderEpoch: number, now: number): void {
    if (leaderEpoch !== this.#leaderEpoch) this.#firstSeen.clear();
    this.#leaderEpoch = leaderEpoch;
    this.#now = now;
    this.#seen.clear();
  }
  /** How long `term`'s jobs must still wait (0: move them). */
  remaining(term: string): number {
    this.#seen.add(term);
    const first = this.#firstSeen.get(term) ?? this.#now;
    this.#firstSeen.set(term, first);
    return Math.max(0, first + this.graceMs - this.#now);
  }
  /** The pass is over: forget terms it did not see. */
  end(): void {
    for (const k of this.#firstSeen.keys()) if (!this.#seen.has(k)) this.#firstSeen.delete(k);
  }
}

async function reapDeadNodes(deps: DutyDeps): Promise<void> {
  if (!deps.fastPath) return;
  const kv = deps.leases();
  for (const key of await kv.keys(keys.nodes)) {
    const lease = await readLease(kv, key);
    if (!lease || lease.value.holder.instance === deps.self.instance) continue;
    if ((await deps.probe(lease.value.holder)) !== 'gone' || !deps.leading()) continue;
    try {
      await kv.delete(key, lease.revision);
      deps.onReap?.(lease.value.holder, lease.epoch);
      deps.log(`reaped lease of dead node ${lease.value.holder.id}`);
    } catch (err) {
      if (!isCasConflict(err)) throw err; // renewed meanwhile: it was alive after all
    }
  }
}
