// Job actors on the inspector come from the job records in `shoal_jobs`:
// every record write is also a transition in the events stream (written with
// the record's `updatedAt`, keyed by the job id, whichever process wrote it),
// so a job that migrates stays one actor. The events carry more (handler
// starts, checkpoints), but a process can die between its write and its
// publish: this KV watch on the records is the authority for a job's state.
// When a record's state has not shown up as a transition within a grace
// period, the inspector adds it as one (`event: 'record'`, instance `kv`).
import { inspectorDefaults, recordGraceMs } from './defaults.ts';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JobRecord } from '../api/contract.ts';
import { caughtUp, natsBucket } from '../store/bucket.ts';
import { defaults } from '../base/defaults.ts';
import type { Transition } from '../nats/events.ts';
import { decodeJob } from '../store/job.store.ts';
import { type Names } from '../nats/subjects.ts';
import { keys } from '../store/keys.ts';
import { sleep } from '../base/time.ts';
import { jsOptions } from '../nats/connect.ts';
import { isTerminalState, recordPath } from './jobs.ts';

/** Jobs whose last state the inspector remembers (the least recently changed go first). */
const jobStatesMax = inspectorDefaults.historyMax;

export class JobStates {
  readonly #last = new Map<string, { to: string; wall: number }>();
  see(items: Transition[]): void {
    for (const t of items) {
      if (t.kind !== 'job') continue;
      const last = this.#last.get(t.actor);
      if (!last || t.wall >= last.wall) {
        this.#last.delete(t.actor);
        this.#last.set(t.actor, { to: t.to, wall: t.wall });
        if (this.#last.size > jobStatesMax) this.#last.delete(this.#last.keys().next().value!);
      }
    }
  }
  /** A transition for the record when no event has shown its state, else null. */
  missing(r: JobRecord, revision: number): Transition | null {
    const last = this.#last.get(r.id);
    const to = recordPath(r);
    if (last && (last.to === to || last.wall > r.updatedAt)) return null;
    return {
      kind: 'job',
      actor: r.id,
      node: r.owner ?? 'kv',
      instance: 'kv',
      pid: 0,
      from: last?.to ?? null,
      to,
      event: 'record',
      epoch: r.attempt,
      wall: r.updatedAt,
      mono: 0,
      seq: revision,
      data: { progress: r.progress },
    };
  }
}

export type RecordSink = {
  /** A transition for a record whose state no event showed within the grace period. */
  add: (t: Transition) => void;
  /** Every record as it is written (the jobs table), and each one deleted or purged. */
  row?: (r: JobRecord) => void;
  removed?: (id: string) => void;
};

/**
 * Watch the job records: each one written since `since`, or not finished, goes
 * to `row`; one whose state no event showed within the grace period also to
 * `add`. Returns a stop.
 */
export function watchRecords(
  nc: NatsConnection,
  n: Names,
  states: JobStates,
  sink: RecordSink,
  since: number,
  graceMs: number = recordGraceMs,
): () => void {
  let stopped = false;
  let stopWatch = () => {};
  const timers = new Set<ReturnType<typeof setTimeout>>();
  void (async () => {
    for (let delay: number = defaults.retryFirstMs; !stopped; delay = Math.min(defaults.retryMaxMs, delay * 2)) {
      try {
        const jsm = await jetstreamManager(nc, jsOptions(nc));
        const bucket = natsBucket(await new Kvm(jetstream(nc, jsOptions(nc))).open(n.jobsBucket), n.jobsBucket, jsm);
        const w = await bucket.watch(keys.jobs);
        stopWatch = () => w.stop();
        if (stopped) return w.stop();
        for await (const e of w) {
          if (e === caughtUp) continue;
          if (e.operation !== 'PUT') {
            sink.removed?.(keys.jobIdOf(e.key));
            continue;
          }
          let r: JobRecord;
          try {
            r = decodeJob(e.value, keys.jobIdOf(e.key));
          } catch {
            continue; // not a record the page could draw
          }
          const recent = r.updatedAt >= since;
          if (recent || !isTerminalState(r.state)) sink.row?.(r);
          if (!recent) continue; // older than the history shown
          const t = setTimeout(() => {
            timers.delete(t);
            const missing = states.missing(r, e.revision);
            if (missing) sink.add(missing);
          }, graceMs);
          timers.add(t);
        }
      } catch {
        // no bucket yet, or cut off: look again
      }
      if (!stopped) await sleep(delay);
    }
  })();
  return () => {
    stopped = true;
    stopWatch();
    timers.forEach(clearTimeout);
  };
}
