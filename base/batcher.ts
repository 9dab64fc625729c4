// Group commit, not timers: items go out at once when no batch is in flight;
// while one is, they gather until it answers (or the batch is full), then go
// out together. Under light load every item leaves at once; under heavy load
// one message (and one reply) carries many.

export type BatchSend<T, R> = (items: T[]) => Promise<R[]>;

export class Batcher<T, R> {
  readonly #send: BatchSend<T, R>;
  readonly #max: number;
  #waiting: Array<{ item: T; resolve: (r: R) => void; reject: (err: unknown) => void }> = [];
  #inFlight = 0;
  /** At most this many batches in flight at once (one: strict group commit). */
  readonly #lanes: number;

  constructor(send: BatchSend<T, R>, options: { max?: number; lanes?: number } = {}) {
    this.#send = send;
    this.#max = options.max ?? 256;
    this.#lanes = options.lanes ?? 1;
  }

  /** Resolves with this item's answer (the batch's answers are in order), or rejects with the batch's error. */
  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      this.#pump();
    });
  }

  get pending(): number {
    return this.#waiting.length;
  }

  #pump(): void {
    while (this.#inFlight < this.#lanes && this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, this.#max);
      this.#inFlight++;
      void this.#send(batch.map((b) => b.item)).then(
        (results) =>
          batch.forEach((b, i) => (i < results.length ? b.resolve(results[i]!) : b.reject(new Error('no answer for this item')))),
        (err) => batch.forEach((b) => b.reject(err)),
      ).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }
}
