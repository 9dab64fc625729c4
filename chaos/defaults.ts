// The chaos suite's own settings (the runtime's are in base/defaults.ts): the
// simulated cluster's and the real-process runs'.

/**
 * The simulated cluster's lease TTL (virtual ms), each node's compute slots (1, so slots fill and priorities matter),
 * and how long the simulated client's wait for each job it submitted lasts.
 */
export const simDefaults = {
  leaseTtlMs: 1_000,
  slots: 1,
  waitTimeoutMs: 60_000,
  /** Each node's wall clock is off the true time by up to this much (either way, fixed per node by the seed). */
  clockSkewMs: 500,
};

/**
 * Chaos runs on real processes: a lease TTL short enough to see many failovers, long enough (on 3 servers) to
 * outlast a stream-leader election most times.
 */
export function chaosLeaseTtlMs(servers: number): number {
  return servers > 1 ? 4_000 : 1_000;
}

/** A chaos run restarts a nats-server whose stream replica is still behind this long after the faults stopped. */
export const strayReplicaRestartMs = 15_000;
