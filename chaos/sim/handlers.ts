// The simulation's job types: their waits go through the node's virtual
// clock, and their true results are known, so the checker compares them.
import type { Handler } from '../../node/handlers.ts';

/** Virtual ms per step of a `sum` job. */
export const sumTickMs = 10;

export const simHandlers: Record<string, Handler> = {
  /** Adds 1..n, one number per tick, checkpointing { next, acc } every `every` numbers. */
  sum: async (input: { n: number; every: number }, ctx) => {
    const r = ctx.restored as { next: number; acc: number } | undefined;
    let next = r?.next ?? 1;
    let acc = r?.acc ?? 0;
    while (next <= input.n) {
      await ctx.sleep(sumTickMs);
      acc += next;
      next++;
      if ((next - 1) % input.every === 0 || next > input.n) await ctx.checkpoint({ next, acc }, (next - 1) / input.n);
    }
    return { sum: acc };
  },
  /** Fails every attempt: retried with backoff, then `failed`. */
  fail: async (_input, ctx) => {
    await ctx.sleep(sumTickMs);
    throw new Error('this job always fails');
  },
};

/** The true result of a simulated job (the checker compares). */
export function simExpected(type: string, input: unknown): unknown {
  if (type !== 'sum') return undefined;
  const n = (input as { n: number }).n;
  return { sum: (n * (n + 1)) / 2 };
}

export const simJobMs = (type: string, input: unknown) => (type === 'sum' ? (input as { n: number }).n * sumTickMs : sumTickMs);
