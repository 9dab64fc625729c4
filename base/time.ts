// Time, in one place: the injectable clock (wall, monotonic, timers), a sleep that
// an AbortSignal can cut short, and a poll with a deadline.

/**
 * What Shoal reads time and sets timers through. Real processes use `realClock`;
 * the simulation (chaos/sim/clock.ts) gives each node a virtual one. It is also
 * XState's `Clock`, so `createActor(machine, { clock })` runs `after` delays on it.
 */
export type Clock = {
  /** Wall-clock ms (event times, job record times). */
  now(): number;
  /** Monotonic ms (lease deadlines): never jumps, keeps running while a process is stopped. */
  mono(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
};

export const realClock: Clock = {
  now: () => Date.now(),
  mono: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};

export function sleep(ms: number, signal?: AbortSignal, clock: Clock = realClock): Promise<void> {
  return new Promise((res, rej) => {
    if (signal?.aborted) return rej(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(t);
      rej(signal!.reason);
    };
    // Remove the listener when the sleep ends: a handler sleeping in a loop would otherwise pile them up on its signal.
    const t = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      res();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Poll `fn` until it returns something truthy; fail with `what` (and the last error) at the deadline. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Waits for `p` at most `ms`; true if it settled (either way) in time. */
export async function within(p: Promise<unknown>, ms: number, clock: Clock = realClock): Promise<boolean> {
  let timer: unknown;
  const late = new Promise<false>((r) => (timer = clock.setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clock.clearTimeout(timer);
  }
}

const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `10m`, `2h`, `1d`, `500ms` → ms. */
export function parseDuration(text: string, what = 'a duration'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`${what} '${text}' is not a duration: use a number and a unit, e.g. 30s, 10m, 2h, 1d`);
  return Number(m[1]) * units[m[2]!]!;
}
