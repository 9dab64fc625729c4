// The simulation's job types: their waits go through the node's virtual
// clock, and their true results are known, so the checker compares them.
import type { Handler } from '../../node/handlers.ts';

/** Virtual ms per step of a `sum` job. */
export const sumTickMs = 10;

/** Adds 1..n, one number per tick, checkpointing { next, acc } every `every` numbers. */
const sum: Handler = async (input: { n: number; every: number }, ctx) => {
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
};

export const simHandlers: Record<string, Handler> = {
  sum,
  /** `sum`, loaded by one node only (`simRareNode`): while it is down, no live node handles the type. */
  rare: sum,
  /** Fails every attempt: retried with backoff, then `failed`. */
  fail: async (_input, ctx) => {
    await ctx.sleep(sumTickMs);
    throw new Error('this job always fails');
  },
};

/** The true result of a simulated job (the checker compares). */
export function simExpected(type: string, input: unknown): unknown {
  if (type !== 'sum' && type !== 'rare') return undefined;
  const n = (input as { n: number }).n;
  return { sum: (n * (n + 1)) / 2 };
}

export const simJobMs = (type: string, input: unknown) => (type === 'fail' ? sumTickMs : (input as { n: number }).n * sumTickMs);

/** The handlers a simulated node loads: `rare` only on the node with a GPU (the same one: its jobs wait for it). */
export const simHandlersOf = (isRareNode: boolean): Record<string, Handler> =>
  isRareNode ? simHandlers : Object.fromEntries(Object.entries(simHandlers).filter(([t]) => t !== 'rare'));
