// Every live (non-terminal) job, kept current by a KV watch on the jobs
// bucket: what the leader places and recovers from, without listing keys.
import type { KV } from '@nats-io/kv';
import { isTerminal, type JobRecord } from '../machines/job.machine.ts';
import { decodeJob } from '../streams/job.store.ts';

export class JobIndex {
  readonly live = new Map<string, JobRecord>();
  #listeners = new Set<() => void>();
  #stop: (() => void) | null = null;
  #ready: Promise<void>;

  constructor(kv: KV) {
    let markReady: () => void = () => {};
    this.#ready = new Promise((r) => (markReady = r));
    void kv.status().then((st) => st.values === 0 && markReady()).catch(() => {});
    void kv.watch({ key: 'job.>' }).then(async (iter) => {
      this.#stop = () => iter.stop();
      for await (const e of iter) {
        if (e.delta === 0 || e.isUpdate) markReady();
        const id = e.key.slice(4);
        if (e.operation !== 'PUT') {
          this.live.delete(id);
          continue;
        }
        try {
          const r = decodeJob(e.value, id);
          if (isTerminal(r)) this.live.delete(id);
          else this.live.set(id, r);
        } catch {
          this.live.delete(id); // unreadable records are not placed
        }
        this.#listeners.forEach((l) => l());
      }
    });
  }

  /** Resolves once the initial values have been read. */
  ready(): Promise<void> {
    return this.#ready;
  }
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
  stop(): void {
    this.#stop?.();
  }
}
