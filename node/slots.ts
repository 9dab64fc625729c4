// A node's capacity and who holds it: compute slots (a job holds one while it
// computes), an I/O limit (jobs waiting on I/O hold none of the compute slots,
// at most `ioSlots` of them at once), memory and GPUs (held from start to end).
// A job that yields (preempted, draining) gives everything back at once.
import { addUsage, fitsFree, noUsage, type Usage } from '../policies/requirements.ts';

export type SlotLimits = {
  /** Compute slots: jobs computing at once. */
  slots: number;
  /** Jobs that may wait on I/O at once without a compute slot (0: a job in I/O keeps its compute slot). */
  ioSlots: number;
  memMb: number;
  gpu: number;
};

type Holder = { phase: 'compute' | 'io'; usage: Usage };
type Waiter = { id: string; grant: () => void };

export class Slots {
  readonly limits: SlotLimits;
  readonly #holders = new Map<string, Holder>();
  /** Starts in progress: a compute slot each (and, once they know their job, its resources), held until they run or give up. */
  #reserved = 0;
  #reservedUsage: Usage = { ...noUsage };
  /** Jobs back from I/O waiting for a compute slot, first come first served; they go before new starts. */
  readonly #waiters: Waiter[] = [];
  /** Called when a compute slot may have come free (`resources`: memory or GPUs too); a start waiting for one may go. */
  onFree: (resources: boolean) => void = () => {};

  constructor(limits: SlotLimits) {
    this.limits = limits;
  }

  get computing(): number {
    let n = 0;
    for (const h of this.#holders.values()) if (h.phase === 'compute') n++;
    return n;
  }
  get inIo(): number {
    return this.#holders.size - this.computing;
  }
  /** Compute slots no one holds, reserves or waits for. */
  get computeFree(): number {
    return Math.max(0, this.limits.slots - this.computing - this.#reserved - this.#waiters.length);
  }
  /** Memory and GPUs no running job holds. */
  get freeUsage(): Usage {
    let memMb = this.limits.memMb - this.#reservedUsage.memMb;
    let gpu = this.limits.gpu - this.#reservedUsage.gpu;
    for (const h of this.#holders.values()) {
      memMb -= h.usage.memMb;
      gpu -= h.usage.gpu;
    }
    return { memMb, gpu };
  }

  /** Hold a compute slot for a start; false when none is free. */
  reserve(): boolean {
    if (this.computeFree <= 0) return false;
    this.#reserved++;
    return true;
  }
  /** A reserved start that knows its job takes its memory and GPUs too; false (nothing taken) when they are not free. */
  reserveUsage(usage: Usage): boolean {
    if (!fitsFree(usage, this.freeUsage)) return false;
    this.#reservedUsage = addUsage(this.#reservedUsage, usage);
    return true;
  }
  /** A reserved start gave up (or runs now: then `hold`), with the usage it reserved. */
  unreserve(usage: Usage = noUsage): void {
    this.#reserved--;
    this.#reservedUsage = addUsage(this.#reservedUsage, usage, -1);
    this.onFree(usage.memMb > 0 || usage.gpu > 0);
  }
  /** A reserved start now runs: it holds its compute slot and the usage it reserved. */
  hold(id: string, usage: Usage = noUsage): void {
    this.#reserved--;
    this.#reservedUsage = addUsage(this.#reservedUsage, usage, -1);
    this.#holders.set(id, { phase: 'compute', usage });
  }
  /** The job ended or yields: everything it held is free at once. */
  release(id: string): void {
    if (this.#holders.delete(id)) this.#grant(true);
  }

  /** Into I/O: gives its compute slot back if the I/O limit allows (true), else keeps it. */
  toIo(id: string): boolean {
    const h = this.#holders.get(id);
    if (!h || h.phase === 'io') return !!h;
    if (this.inIo >= this.limits.ioSlots) return false;
    h.phase = 'io';
    this.#grant();
    return true;
  }

  /** Back to computing: resolves once it holds a compute slot again (true: it had given its slot up); rejects if `signal` aborts first. */
  toCompute(id: string, signal: AbortSignal): Promise<boolean> {
    const h = this.#holders.get(id);
    if (!h || h.phase === 'compute') return Promise.resolve(false);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        id,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          h.phase = 'compute';
          resolve(true);
        },
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal.reason);
        this.#grant();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#grant();
    });
  }

  /** Hand free compute slots to the jobs back from I/O first, then tell the waiting starts (`resources`: memory or GPUs came free). */
  #grant(resources = false): void {
    while (this.#waiters.length > 0 && this.limits.slots - this.computing - this.#reserved > 0) {
      const w = this.#waiters.shift()!;
      if (this.#holders.has(w.id)) w.grant();
    }
    this.onFree(resources);
  }
}
