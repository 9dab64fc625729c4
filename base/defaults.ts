// Every default the runtime uses (names carry their units), in one place so
// tests and flags can override them and nobody copies a magic number. Tooling
// keeps its own beside its users (the simulation's, the chaos runs', the demos',
// the inspector's).

export const defaults = {
  prefix: 'shoal',
  natsUrl: 'nats://127.0.0.1:4222',
  /** Cluster-wide: it is the TTL of the leases bucket (single server). */
  leaseTtlMs: 5_000,
  /**
   * With replicated buckets a KV stream-leader election (4-9 s in nats-server
   * 2.10) blocks every write: a lease must outlast it plus a renewal interval.
   */
  replicatedLeaseTtlMs: 20_000,
  slots: 4,
  /** Jobs a node lets wait on I/O (`ctx.phase('io')`) without a compute slot; 0 turns phase awareness off. */
  ioSlots: 16,
  /**
   * A handler thread whose handler has not ended this long after its signal
   * aborted (plus any checkpoint grace) is terminated and replaced.
   */
  handlerStopMs: 500,
  /** Handler threads kept warm beyond the running ones (each holds a loaded job module). */
  handlerThreadsIdle: 4,
  /** How often followers ping the lease holder (the failover fast path). */
  probeIntervalMs: 25,
  /** A ping that times out is not evidence of death; only "no responders" is. */
  probeTimeoutMs: 20,
  /**
   * "No responders" counts only when a second ping this much later says it
   * again: a holder whose nats-server died answers "no responders" for the
   * moment it takes to reconnect elsewhere (16 ms measured in CI), and must
   * not lose its lease over it.
   */
  probeConfirmMs: 50,
  /**
   * A node that has had no round trip to its nats-server for this long suspends
   * leadership (its coordinator goes `suspended`), as if disconnected: a silent
   * (blackholed) connection is otherwise noticed only by the client's pings,
   * seconds later. Checked every `contactCheckMs`.
   */
  contactTimeoutMs: 1_000,
  contactCheckMs: 200,
  /**
   * On a cluster, "no responders" from a holder's subject is confirmed only this
   * much later: its nats-server may have died under a connection the holder
   * cannot see is dead (blackholed), and the holder stops acting by
   * contactTimeoutMs + contactCheckMs after its last round trip, so taking over
   * later than that never overlaps it. A lone server drops a silent client only
   * after its own pings (seconds), so there the first "no responders" stands.
   */
  clusterProbeConfirmMs: 1_500,
  /**
   * A node whose link to NATS has been down this long (disconnected, or no round trip for contactTimeoutMs) stops
   * its running handlers and starts none until the link is back: the leader may have reaped its lease term.
   */
  cutOffFenceMs: 250,
  /**
   * Recovery moves the jobs of a node lease term it saw end (reaped, expired, gone) no sooner than this after: a
   * holder cut off but alive notices within contactTimeoutMs + contactCheckMs of its last round trip and stops its
   * handlers cutOffFenceMs later, so no handler of a job overlaps the next attempt's (a 250 ms margin on top).
   */
  reapGraceMs: 1_700,
  reconnectTimeWaitMs: 250,
  pingIntervalMs: 2_000,
  maxPingOut: 2,
  connectTimeoutMs: 5_000,
  /** How long a starting node waits for JetStream to accept its buckets (a forming cluster). */
  bootstrapTimeoutMs: 60_000,
  /** Per KV/JetStream request. Shorter than the lease margin matters less than being bounded. */
  kvTimeoutMs: 2_000,
  apiTimeoutMs: 5_000,
  /** The shortest attempt of an idempotent API call (the client tries a third of its timeout at a time). */
  apiAttemptMs: 1_000,
  /** A client's wait asks for the job in slices this long, so a wait lost with a dying node is asked again. */
  waitSliceMs: 5_000,
  /** A client's `job.wait()` without a bound asks in waits this long (each itself in `waitSliceMs` requests). */
  clientWaitSliceMs: 60_000,
  /** A client's wait or progress that finds no node answering (a leader handing over) asks again after this. */
  clientNoNodesRetryMs: 250,
  /** How often a client's `job.progress()` reads the job. */
  progressPollMs: 250,
  /** Live inspection: at most one snapshot per actor per this many ms, a bounded queue (dropped beyond, never blocking), and how long a viewer's last sync keeps the feed on. */
  inspectCoalesceMs: 100,
  inspectMaxQueue: 500,
  inspectViewerTtlMs: 10_000,
  /** Where `--metrics-port` listens unless `--metrics-host` says otherwise (loopback: say 0.0.0.0 for a remote Prometheus). */
  metricsHost: '127.0.0.1',
  /** `jobs.list` page size when the request names none. */
  listLimit: 100,
  /** A job index whose watch delivered nothing this long, while the bucket moved on, watches again. */
  indexStallCheckMs: 5_000,
  /** Work per node and its Gini (status, metrics) are over this last stretch of time. */
  fairnessWindowMs: 60_000,
  /** How many lately finished jobs a node's index keeps, so waits for them need no read. */
  indexFinishedMax: 10_000,
  /** `jobs.wait`s one process holds open at once at most (each a follower and a timer); more are answered 503. */
  waitsMax: 10_000,
  /** `jobs.wait` gives up (408) after this when the request names no timeout. */
  waitTimeoutMs: 30_000,
  /** A watch (the job index) or bootstrap that failed is retried this soon, doubling up to the max. */
  retryFirstMs: 250,
  retryMaxMs: 5_000,
  bootstrapRetryMaxMs: 2_000,
  /** Room a core message leaves below the server's max_payload for its subject, reply and headers. */
  messageHeadroomBytes: 16 * 1024,
  /** Largest API request body accepted, bytes (below NATS' default 1 MiB max_payload, so a client can exceed it). */
  apiMaxRequestBytes: 512 * 1024,
  /** Transitions one stored event message carries at most. */
  eventBatchMax: 512,
  /** Event publishes retried this often (deduplicated by msg id), this far apart. */
  eventRetries: 20,
  eventRetryDelayMs: 250,
  eventsMaxAgeMs: 24 * 60 * 60 * 1_000,
  eventsMaxBytes: 256 * 1024 * 1024,
  replicas: 1,
  // Jobs
  maxAttempts: 3,
  jobTimeoutMs: 10 * 60_000,
  priority: 5,
  /** Retry backoff: base * 2^(failures-1), capped. */
  retryBackoffBaseMs: 200,
  retryBackoffMaxMs: 30_000,
  /** An assigned job not started within this goes back to the queue (an assignment that named no lease term). */
  startTimeoutMs: 5_000,
  /**
   * A handler's start is written with the attempt's first write of its own (its result, for a short job);
   * one still running after this long gets its start written alone.
   */
  startWriteDelayMs: 50,
  /** While no dispatcher answers (a failover), a forwarded request is tried again this soon, doubling. */
  dispatchRetryMs: 25,
  /** An assignment not acknowledged is sent again this soon, doubling up to the max, while the record still shows it. */
  assignResendMs: 100,
  /** How long the dispatcher waits for a node to acknowledge assignments (no answer: sent again). */
  assignAckTimeoutMs: 500,
  assignResendMaxMs: 2_000,
  /**
   * Prefetch: where jobs run short (lately, on average), a node may hold up to this long of work beyond
   * its slots, at most `prefetchMaxPerSlot` more jobs per slot, so the next starts as one ends.
   */
  prefetchWindowMs: 20,
  prefetchMaxPerSlot: 16,
  /** How often a dispatcher checks that it still leads (it stops serving as soon as it does not). */
  dispatchCheckMs: 50,
  /** Submits one intake batch carries at most (more wait for the next). */
  intakeBatchMax: 256,
  /** How long the leader collects bids for one auction round. */
  bidWindowMs: 30,
  /** Placement rounds when nothing wakes the leader earlier. */
  placeIntervalMs: 250,
  jobsPerAuction: 256,
  /** Wins older than this no longer count against a node's next bids. */
  recentWinsMs: 5_000,
  /** A job no live node can satisfy: the leader confirms that from the leases at most this often. */
  pendingRecheckMs: 500,
  /**
   * A queued job whose type no live node handles waits this long (unless its
   * own `pendingTimeoutMs` says otherwise) before it fails as an unknown type:
   * long enough for a rolling restart of the only nodes that load its module.
   */
  typeMissingTimeoutMs: 60_000,
  /** Progress writes per running job are at most this frequent. */
  progressIntervalMs: 250,
  /** A runner's job write that got no verdict (timeout) is retried this soon, doubling up to the max, while its lease holds. */
  jobWriteRetryMs: 100,
  jobWriteRetryMaxMs: 2_000,
  /** A job create that got no verdict (timeout) is tried this many times in all before its submit fails. */
  createTries: 3,
  /** How long a finished job's record and checkpoint stay (the cluster's; a job's `retentionMs` wins). */
  retentionMs: 7 * 24 * 3_600_000,
  /** The jobs and checkpoints buckets' byte limits, set when a cluster first creates them (change with `nats stream edit`). */
  jobsBucketMaxBytes: 1024 * 1024 * 1024,
  schedulesBucketMaxBytes: 64 * 1024 * 1024,
  /** The leader looks for due schedule ticks this often. */
  scheduleCheckMs: 500,
  /** A leader coming back to a schedule submits the ticks it missed within this window (at most `scheduleCatchUpMax`); older ones are skipped. */
  scheduleCatchUpMs: 60_000,
  scheduleCatchUpMax: 60,
  checkpointsBucketMaxBytes: 1024 * 1024 * 1024,
  /** `--placement pull`: the work queue's limits, and how often one item is delivered at most. */
  workQueueMaxMsgs: 1_000_000,
  workQueueMaxBytes: 256 * 1024 * 1024,
  workQueueMaxDeliver: 1_000,
  /** Retention deletes this many records at once, batch after batch, for at most `expirePassMs` per recovery pass. */
  expireBatch: 512,
  expirePassMs: 1_000,
  /**
   * What retention deletes leaves behind (a marker per key) expires after this, where the bucket allows
   * per-message TTL (nats-server 2.11+, buckets created by Shoal 0.x with it); on 2.10 one ~100-byte marker stays.
   */
  purgeMarkerTtlMs: 60_000,
  /**
   * The leader removes a purged record's marker this long after it saw it (or after the retention, if shorter):
   * long enough for watchers (the standby, inspectors) to see the purge; on any server version.
   */
  markerCompactAfterMs: 10_000,
  /** Markers the job index remembers for compaction at most (beyond it, the oldest stay in the bucket). */
  indexMarkersMax: 100_000,
  /** Encoded checkpoint limit (the KV value limit is the server's max_payload, 1 MiB by default). */
  checkpointMaxBytes: 512 * 1024,
  /**
   * Encoded result limit: a record holds its input (≤ `jobInputMaxBytes`), its result and its last attempts,
   * and must stay below the KV value limit. A bigger result fails the job at once (not retried).
   */
  resultMaxBytes: 512 * 1024,
  /** A failed attempt's error message is cut to this many characters on the record. */
  errorMaxChars: 4_096,
  /** How long a node keeps another node's answer about a job type's input schema (or that none has one). */
  schemaCacheMs: 10_000,
  /** How long a node waits for another node to say a job type's input schema. */
  schemaAskTimeoutMs: 500,
  /** Largest job input accepted at submit, bytes encoded (CBOR, as stored). */
  jobInputMaxBytes: 256 * 1024,
  /** Grace for a process asked to stop before it is killed. */
  stopGraceMs: 10_000,
  /**
   * Once a node's machine has stopped, how long its process waits for its last events to be
   * acknowledged and its connection to drain (a nats-server that is gone would wait forever).
   * The drain itself is bounded by the lease timing's `drainDeadlineMs` (TTL + max(TTL, 2 s)).
   */
  stopFlushMs: 2_000,
} as const;

export function defaultLeaseTtlMs(replicas: number): number {
  return replicas > 1 ? defaults.replicatedLeaseTtlMs : defaults.leaseTtlMs;
}

/** A job type's retry backoff (the API contract's `retryPolicySchema`; what is left out takes the defaults above). */
export type BackoffPolicy = { backoff?: 'exponential' | 'fixed'; baseMs?: number; maxMs?: number; jitter?: boolean };

/**
 * The wait before the retry after `failures` failures: base · 2^(failures-1) (or base when fixed), capped; with
 * jitter, a uniform draw from half of it to all of it, so jobs that failed together do not retry together.
 */
export function retryBackoffMs(failures: number, policy: BackoffPolicy = {}, random: () => number = Math.random): number {
  const base = policy.baseMs ?? defaults.retryBackoffBaseMs;
  const growth = policy.backoff === 'fixed' ? 1 : 2 ** Math.max(0, failures - 1);
  const ms = Math.min(policy.maxMs ?? defaults.retryBackoffMaxMs, base * growth);
  return policy.jitter ? Math.round(ms * (0.5 + random() / 2)) : ms;
}

/**
 * How long a lease request (acquire, renew, release, read) waits for JetStream.
 * A third of the TTL at most: a holder whose renewal request was lost must still
 * have time to retry before its deadline, and a candidate must not sit out a
 * whole TTL on one lost request. Never longer than any other KV request.
 */
export function leaseRequestTimeoutMs(ttlMs: number): number {
  return Math.round(Math.min(defaults.kvTimeoutMs, Math.max(100, ttlMs / 3)));
}
