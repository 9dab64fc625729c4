// The lease's pure rules beside its machine: how every interval follows from
// the one TTL, when a holder may still act, and when a follower may judge a
// silent holder gone.

export type LeaseTiming = {
  ttlMs: number;
  /** A holder stops trusting its lease this long before the TTL runs out. */
  marginMs: number;
  renewIntervalMs: number;
  /** How often a follower checks whether the key is still there (TTL expiry raises no watch event before nats-server 2.11). */
  pollIntervalMs: number;
  /** Pause before retrying a renewal that failed without a verdict. */
  retryIntervalMs: number;
  /**
   * How long a node may spend handing its jobs back when told to stop. Cut off
   * from NATS it cannot renew, so its lease is gone after one TTL and nothing
   * it writes would count; the rest is slack for a slow but connected drain.
   */
  drainDeadlineMs: number;
};

const clamp = (v: number, lo: number, hi: number) => Math.round(Math.min(hi, Math.max(lo, v)));

/** Lease timing derived from the TTL, so that one setting tunes all of it. */
export function leaseTiming(ttlMs: number): LeaseTiming {
  return {
    ttlMs,
    marginMs: clamp(ttlMs / 10, 20, 1_000),
    renewIntervalMs: clamp(ttlMs / 3, 10, 60_000),
    pollIntervalMs: clamp(ttlMs / 10, 20, 1_000),
    retryIntervalMs: clamp(ttlMs / 20, 10, 250),
    drainDeadlineMs: ttlMs + clamp(ttlMs, 2_000, 30_000),
  };
}

/** Until when a confirmed write sent at `sentAt` (monotonic ms) lets its holder act: the TTL, less the margin. */
export const validUntilOf = (timing: LeaseTiming, sentAt: number) => sentAt + timing.ttlMs - timing.marginMs;

/** True while a holder may still act on its lease, by its own monotonic clock. */
export function leaseValidAt(ctx: { validUntil: number | null }, now: number): boolean {
  return ctx.validUntil !== null && now < ctx.validUntil;
}

/**
 * Valid, and confirmed lately: the last confirmed renewal was sent at most one renew interval and a margin ago
 * (validity is counted from the send). A process that was paused (or blocked) sees its timers all at once on
 * waking, perhaps before it hears its connection was reset and a follower took the lease by the fast path: a
 * lease valid by its own clock but not fresh is confirmed by a renewal before the holder begins new work.
 */
export function leaseFreshAt(ctx: { validUntil: number | null }, timing: LeaseTiming, now: number): boolean {
  return leaseValidAt(ctx, now) && ctx.validUntil! >= validUntilOf(timing, now - timing.renewIntervalMs - timing.marginMs);
}

/** When a follower first saw a lease key at a revision, by its own monotonic clock. */
export type Sighting = { revision: number; at: number };

/**
 * The silent-holder rule. TTL expiry raises no watch event before nats-server
 * 2.11, and under concurrent writes 2.10 may expire a key up to ~2 TTL late, so
 * a follower judges expiry by its own clock: a revision it has seen unrenewed
 * for a whole TTL belongs to a holder whose own deadline (TTL − margin, counted
 * from before that write) has passed, so taking it over by CAS on exactly that
 * revision is safe. Returns the sighting to keep and whether the holder is gone.
 */
export function judgeSilence(
  prev: Sighting | undefined,
  revision: number,
  now: number,
  ttlMs: number,
): { sighting: Sighting; expired: boolean } {
  if (prev?.revision !== revision) return { sighting: { revision, at: now }, expired: false };
  return { sighting: prev, expired: now - prev.at >= ttlMs };
}
