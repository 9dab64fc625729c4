// Settings of the local clusters the demos, benchmarks and tests start.

/** The demos' and the failover benchmark's lease TTL: short, so failovers show. */
export const demoLeaseTtlMs = 1_000;
