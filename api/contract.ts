// The public API contract, in one place: the zod schema of every request and
// reply on `<prefix>.api.*` and of the job record, with the TypeScript types
// derived from them. The nodes' service, the client, the CLI and the tests all
// use it; it needs zod alone, so a client can take it without the runtime.
// The wire protocol is described in docs/api.md.
import { z } from 'zod';

// ── The job record ──────────────────────────────────────────────────────────

export const jobStates = ['queued', 'assigned', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStateName = (typeof jobStates)[number];
export const terminalStates: readonly JobStateName[] = ['succeeded', 'failed', 'cancelled'];

/** What a running job is doing (null while not running). */
export const jobPhases = ['computing', 'ioWait', 'checkpointing'] as const;
export type JobPhase = (typeof jobPhases)[number];

/** How an attempt ended (`running` while it runs; null until it starts). */
export const attemptOutcomes = ['running', 'succeeded', 'failed', 'timeout', 'orphaned', 'preempted', 'unstarted', 'cancelled'] as const;
export type AttemptOutcome = (typeof attemptOutcomes)[number];

/** W3C trace context (traceparent and tracestate) carried from a submit to each attempt's span. */
export const traceSchema = z.object({
  traceparent: z.string().regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/, 'a W3C traceparent'),
  tracestate: z.string().max(512).optional(),
}).strict();
export type TraceContext = z.infer<typeof traceSchema>;

/** Job ids: letters, digits, - or _ (they become NATS subject tokens and KV keys). */
export const jobId = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'letters, digits, - or _, at most 128');

/** Label keys and values as node flags take them: no `=` in a key, nothing empty. */
const labelKey = z.string().regex(/^[A-Za-z0-9_.\/-]{1,64}$/, 'letters, digits, _ . / or -, at most 64');

/** What a job needs of the node that runs it: at least this much memory and this many GPUs, and every label equal. */
export const requirementsSchema = z.object({
  memMb: z.number().int().min(1).max(2 ** 31).optional(),
  gpu: z.number().int().min(0).max(1024).optional(),
  labels: z.record(labelKey, z.string().min(1).max(256)).optional(),
}).strict();
export type Requirements = z.infer<typeof requirementsSchema>;

export const attemptSchema = z.object({
  attempt: z.number(),
  node: z.string(),
  assignedAt: z.number(),
  startedAt: z.number().nullable(),
  endedAt: z.number().nullable(),
  /** Progress restored from the checkpoint when this attempt started (0 if none). */
  resumedFrom: z.number(),
  outcome: z.enum(attemptOutcomes).nullable(),
  /**
   * The owner's node-lease epoch when it started this attempt. Lease loss is
   * fail-stop, so the attempt dies with that lease term, even if the node
   * re-joins (or restarts) under the same id.
   */
  nodeEpoch: z.number().nullable().optional(),
});
export type AttemptEntry = z.infer<typeof attemptSchema>;

/**
 * A job record: what `jobs.get` and `jobs.wait` answer, and what the jobs
 * bucket stores (the job machine's persisted snapshot). Fields added after
 * the first release read with their neutral values from older records.
 */
export const jobRecordSchema = z.object({
  id: z.string(),
  type: z.string(),
  input: z.unknown(),
  /** 0–9, higher first. */
  priority: z.number(),
  maxAttempts: z.number(),
  timeoutMs: z.number(),
  /** Bumped by every assignment: the fence for everything the owner writes. */
  attempt: z.number(),
  owner: z.string().nullable(),
  progress: z.number(),
  result: z.unknown(),
  error: z.string().nullable(),
  /** Failed or timed-out attempts (not orphaned or preempted ones). */
  failures: z.number(),
  /** Wall ms before which a retry is not placed (backoff). */
  notBefore: z.number(),
  createdAt: z.number(),
  updatedAt: z.number(),
  /** Its last 20 attempts (the job machine's `attemptsKept`), oldest first. */
  attempts: z.array(attemptSchema),
  /** Placed only on a node that satisfies these (null: any node that handles the type). */
  requires: requirementsSchema.nullable().default(null),
  /** Fail when no live node could satisfy `requires` for this long (null: wait forever). */
  pendingTimeoutMs: z.number().nullable().default(null),
  /** Why no live node can take it now, set by the leader while it waits; and since when (wall ms). */
  pendingReason: z.string().nullable().default(null),
  pendingSince: z.number().nullable().default(null),
  /** Attempts that ended preempted (handed back for a higher-priority job, or by a drain), and when the last did. */
  preemptions: z.number().default(0),
  preemptedAt: z.number().nullable().default(null),
  /** How long the record and its checkpoint stay once the job has finished (null: the cluster's retention). */
  retentionMs: z.number().nullable().default(null),
  /** Running attempts that ended orphaned (their node gone under them); the job fails as a poison job at the job machine's `orphanLimit` (10). */
  orphans: z.number().default(0),
  /** Wall ms of the current attempt's last checkpoint (null: none yet). */
  checkpointedAt: z.number().nullable().default(null),
  /** The submitter's trace context (OpenTelemetry), the parent of each attempt's span; null: none. */
  trace: traceSchema.nullable().default(null),
  state: z.enum(jobStates),
  phase: z.enum(jobPhases).nullable(),
});
export type JobRecord = z.infer<typeof jobRecordSchema>;

// ── Job types ──────────────────────────────────────────────────────────────

/** How a job type retries: attempts in all, and the wait before each retry. */
export const retryPolicySchema = z.object({
  /** Attempts in all (a submit's own `maxAttempts` wins). */
  maxAttempts: z.number().int().min(1).max(100).optional(),
  /** exponential: baseMs · 2^(failures-1); fixed: baseMs every time. Capped at maxMs. */
  backoff: z.enum(['exponential', 'fixed']).optional(),
  baseMs: z.number().int().min(0).max(3_600_000).optional(),
  maxMs: z.number().int().min(0).max(24 * 3_600_000).optional(),
  /** Each wait drawn from half of it to all of it. */
  jitter: z.boolean().optional(),
}).strict();
export type RetryPolicy = z.infer<typeof retryPolicySchema>;

/** A job type's settings, declared with its handler (`defineJob`): defaults for the jobs submitted for it. */
export const typeSettingsSchema = z.object({
  retry: retryPolicySchema.optional(),
  /** Each attempt's timeout (a submit's own `timeoutMs` wins). */
  timeoutMs: z.number().int().min(1).max(7 * 24 * 3_600_000).optional(),
  /** How long a finished job's record stays (a submit's own `retentionMs` wins; default: the cluster's). */
  retentionMs: z.number().int().min(1_000).max(365 * 24 * 3_600_000).optional(),
  /** At most this many of its jobs assigned or running at once, across the cluster. */
  concurrency: z.number().int().min(1).max(1_000_000).optional(),
}).strict();
export type TypeSettings = z.infer<typeof typeSettingsSchema>;

// ── Requests ───────────────────────────────────────────────────────────────

export const statusRequest = z.object({}).strict();

const jsonData = z.json();

export const submitRequest = z.object({
  type: z.string().min(1).max(128),
  /** Plain JSON data, whichever encoding the request came in: records are read back as JSON too. */
  input: z.unknown().refine((v) => jsonData.safeParse(v).success, {
    message: 'must be plain JSON data (objects, arrays, strings, finite numbers, booleans, null)',
  }).optional(),
  priority: z.number().int().min(0).max(9).optional(),
  id: jobId.optional(),
  maxAttempts: z.number().int().min(1).max(100).optional(),
  timeoutMs: z.number().int().min(1).max(7 * 24 * 3_600_000).optional(),
  /** Placed only on a node that satisfies these: `{memMb, gpu, labels: {zone: "edge"}}`. */
  requires: requirementsSchema.optional(),
  /** Fail when no live node could satisfy `requires` for this long (default: wait forever). */
  pendingTimeoutMs: z.number().int().min(1).max(30 * 24 * 3_600_000).optional(),
  /** Keep the record this long after the job finished (default: the cluster's, `shoal node --retention`). */
  retentionMs: z.number().int().min(1_000).max(365 * 24 * 3_600_000).optional(),
  /** A delayed job: not placed before this long after the submit (ms). */
  delayMs: z.number().int().min(0).max(365 * 24 * 3_600_000).optional(),
  /** A delayed job: not placed before this wall time (ms since the epoch, by the receiving node's clock). */
  runAt: z.number().int().min(0).max(8.64e15).optional(),
  /** The submitter's trace context: each attempt's span is its child (the package's client sets it from the active span). */
  trace: traceSchema.optional(),
}).strict().refine((r) => r.delayMs === undefined || r.runAt === undefined, {
  message: 'give delayMs or runAt, not both',
  path: ['runAt'],
});

export const idRequest = z.object({ id: jobId }).strict();

export const listRequest = z.object({
  state: z.enum(jobStates).optional(),
  type: z.string().min(1).max(128).optional(),
  /** Jobs created at or after this wall time (ms since the epoch). */
  since: z.number().int().min(0).optional(),
  /** `oldest` first (the default) or `newest` first; a cursor pages on in the same order. */
  order: z.enum(['oldest', 'newest']).optional(),
  limit: z.number().int().min(1).max(1000).optional(),
  cursor: z.string().regex(/^\d+\.[A-Za-z0-9_-]+$/, 'a cursor from a previous reply').optional(),
}).strict();

export const waitRequest = z.object({ id: jobId, timeoutMs: z.number().int().min(1).max(3_600_000).optional() }).strict();

export const drainRequest = z.object({ id: z.string().min(1) }).strict();

// ── Schedules ──────────────────────────────────────────────────────────────

/** Schedule names become KV keys and job ids (`<name>-<tick ms>`). */
export const scheduleName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, - or _, at most 64');

/** The job a schedule submits at each tick: what `jobs.submit` takes, less the id (each tick's is `<name>-<tick ms>`). */
const scheduledJob = z.object({
  type: z.string().min(1).max(128),
  input: z.json().optional(),
  priority: z.number().int().min(0).max(9).optional(),
  maxAttempts: z.number().int().min(1).max(100).optional(),
  timeoutMs: z.number().int().min(1).max(7 * 24 * 3_600_000).optional(),
  requires: requirementsSchema.optional(),
  pendingTimeoutMs: z.number().int().min(1).max(30 * 24 * 3_600_000).optional(),
  retentionMs: z.number().int().min(1_000).max(365 * 24 * 3_600_000).optional(),
}).strict();

export const scheduleAddRequest = z.object({
  name: scheduleName,
  /** Five fields (minute hour day month weekday), or six with seconds first; `@daily` and the like. */
  cron: z.string().min(1).max(256),
  /** An IANA time zone the cron fields are read in (default UTC). */
  timezone: z.string().min(1).max(64).optional(),
  job: scheduledJob,
  /** Replace a schedule of that name (otherwise 409). */
  replace: z.boolean().optional(),
}).strict();

export const scheduleNameRequest = z.object({ name: scheduleName }).strict();

/** A schedule as stored and answered. */
export const scheduleSchema = z.object({
  name: z.string(),
  cron: z.string(),
  timezone: z.string().nullable(),
  job: scheduledJob,
  paused: z.boolean(),
  createdAt: z.number(),
  /** The last tick a job was submitted for (wall ms; null: none yet): the next is the first after it. */
  lastTickAt: z.number().nullable(),
  /** Jobs it submitted. */
  fired: z.number(),
  /** The next tick (wall ms), null while paused or when the expression has no more. */
  nextTickAt: z.number().nullable(),
});
export type Schedule = z.infer<typeof scheduleSchema>;

// ── Replies ────────────────────────────────────────────────────────────────

/** A live node as its lease advert says. */
export const nodeViewSchema = z.object({
  id: z.string(),
  pid: z.number(),
  host: z.string(),
  runtime: z.string(),
  /** joining, ready, reconnecting, draining, fenced. */
  state: z.string(),
  slots: z.number(),
  running: z.number(),
  types: z.array(z.string()),
  /** Its types' concurrency limits (`defineJob`), by type. */
  limits: z.record(z.string(), z.number()),
  labels: z.record(z.string(), z.string()),
  /** Its bid scorer: `onnx:<version>`, `heuristic`, or `heuristic (fallback: <reason>)`. */
  policy: z.string(),
  /** How it places jobs while it leads. */
  placement: z.string(),
  speed: z.number(),
  ioSlots: z.number(),
  /** Null: no limit. */
  memMb: z.number().nullable(),
  gpu: z.number(),
  lastSeen: z.string(),
  /** The node's clock minus the NATS server's at its last lease write (ms, one-way latency included); null: unknown. */
  clockSkewMs: z.number().nullable(),
  /** Its node-lease epoch: a restarted node has a new one. */
  epoch: z.number(),
});

/** Who leads and which nodes are alive, from the leases bucket. */
export const clusterViewSchema = z.object({
  leader: z.object({
    nodeId: z.string(),
    epoch: z.number(),
    since: z.string(),
    /** The dispatcher's warm standby (dispatch placement), once it names one: it serves reads too and takes over first. */
    standby: z.string().optional(),
  }).nullable(),
  nodes: z.array(nodeViewSchema),
});
export type ClusterView = z.infer<typeof clusterViewSchema>;

export const fairnessSchema = z.object({
  windowMs: z.number(),
  /** Job-seconds each node ran in the window. */
  jobSeconds: z.record(z.string(), z.number()),
  /** Their Gini coefficient (0: even). */
  gini: z.number(),
});
export type Fairness = z.infer<typeof fairnessSchema>;

export const statusReply = clusterViewSchema.extend({
  jobs: z.object(Object.fromEntries(jobStates.map((s) => [s, z.number()])) as Record<JobStateName, z.ZodNumber>),
  queueDepth: z.number(),
  /** Queued jobs no live node can take now, by reason. */
  pending: z.object({ total: z.number(), byReason: z.record(z.string(), z.number()) }),
  fairness: fairnessSchema,
});
export type StatusReply = z.infer<typeof statusReply>;

export const submitReply = z.object({ id: z.string(), state: z.enum(jobStates), created: z.boolean() });
export const listReply = z.object({ jobs: z.array(jobRecordSchema), cursor: z.string().optional() });
export const cancelReply = z.object({ id: z.string(), state: z.enum(jobStates), cancelled: z.boolean() });
/** A retry is a new job (`<id>-r<n>`) with the failed one's type, input and options: its result is committed once, like any job's. */
export const retryReply = submitReply.extend({ retryOf: z.string() });
export const drainReply = z.object({ id: z.string(), draining: z.boolean() });

/** The body of an error reply (beside the micro service's `Nats-Service-Error-Code` and `Nats-Service-Error` headers). */
export const errorReply = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

// ── The endpoints ──────────────────────────────────────────────────────────

/**
 * Every endpoint, by the subject suffix it answers on (`<prefix>.api.<name>`):
 * its request and reply. `admin`: publishable by the admin role only.
 */
export const endpoints = {
  status: { request: statusRequest, reply: statusReply },
  'jobs.submit': { request: submitRequest, reply: submitReply },
  'jobs.get': { request: idRequest, reply: jobRecordSchema },
  'jobs.list': { request: listRequest, reply: listReply },
  'jobs.wait': { request: waitRequest, reply: jobRecordSchema },
  'jobs.cancel': { request: idRequest, reply: cancelReply },
  'jobs.retry': { request: idRequest, reply: retryReply },
  'nodes.drain': { request: drainRequest, reply: drainReply, admin: true },
  'schedules.add': { request: scheduleAddRequest, reply: scheduleSchema },
  'schedules.list': { request: statusRequest, reply: z.object({ schedules: z.array(scheduleSchema) }) },
  'schedules.pause': { request: scheduleNameRequest, reply: scheduleSchema },
  'schedules.resume': { request: scheduleNameRequest, reply: scheduleSchema },
  'schedules.remove': { request: scheduleNameRequest, reply: z.object({ name: z.string(), removed: z.boolean() }) },
} as const;

export type EndpointName = keyof typeof endpoints;
/** What a caller sends (fields with defaults may be left out). */
export type RequestOf<E extends EndpointName> = z.input<(typeof endpoints)[E]['request']>;
/** What a handler gets: the request as validated. */
export type ParsedRequestOf<E extends EndpointName> = z.output<(typeof endpoints)[E]['request']>;
export type ReplyOf<E extends EndpointName> = z.output<(typeof endpoints)[E]['reply']>;
