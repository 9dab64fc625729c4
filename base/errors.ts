// Every error condition Shoal reports, one class each, with a `code` callers
// branch on and `cause` preserved.

export class CodecError extends Error {
  readonly code = 'BAD_PAYLOAD';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CodecError';
  }
}

/** A public API failure: `status` is the micro-service error code (400, 404, 409, 413, 500, 503, 507). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export class LeaseTtlMismatchError extends Error {
  readonly code = 'LEASE_TTL_MISMATCH';
  readonly bucket: string;
  readonly bucketTtlMs: number;
  readonly requestedTtlMs: number;
  constructor(bucket: string, bucketTtlMs: number, requestedTtlMs: number, options?: ErrorOptions) {
    super(
      `--lease-ttl ${requestedTtlMs} differs from the cluster's lease TTL ${bucketTtlMs} ms (the TTL of KV bucket '${bucket}', one setting for the whole cluster). ` +
        `Omit --lease-ttl to adopt ${bucketTtlMs} ms, or delete the bucket when no node runs (nats kv rm ${bucket}) to choose a new one.`,
      options,
    );
    this.name = 'LeaseTtlMismatchError';
    this.bucket = bucket;
    this.bucketTtlMs = bucketTtlMs;
    this.requestedTtlMs = requestedTtlMs;
  }
}

const howToGetOne = "Get nats-server 2.10 or newer: run 'npm run setup' (fetches Debian trixie's package into .cache/), " +
  "'brew install nats-server', or your distribution's 2.10+ package; then put it on PATH or set NATS_SERVER_BIN=/path/to/nats-server. " +
  'Or point Shoal at a server you already run with --nats URL.';

export class NatsServerNotFoundError extends Error {
  readonly code = 'NATS_SERVER_NOT_FOUND';
  readonly looked: string[];
  constructor(looked: string[], options?: ErrorOptions) {
    super(`no nats-server found (looked at: ${looked.join(', ')}). ${howToGetOne}`, options);
    this.name = 'NatsServerNotFoundError';
    this.looked = looked;
  }
}

export class NatsServerVersionError extends Error {
  readonly code = 'NATS_SERVER_TOO_OLD';
  readonly path: string;
  readonly version: string;
  constructor(path: string, version: string, options?: ErrorOptions) {
    super(
      `nats-server ${version} at ${path} is older than 2.10. Shoal refuses it: before 2.9.21 clustered KV compare-and-swap is broken ` +
        `(two updates with the same expected revision both succeed; measured on Debian bookworm's 2.9.10), and Shoal's leases and job records rely on it. ${howToGetOne}`,
      options,
    );
    this.name = 'NatsServerVersionError';
    this.path = path;
    this.version = version;
  }
}

/** A write refused because a newer attempt (or owner) holds the record or checkpoint: stop, write nothing more. */
export class FencedError extends Error {
  readonly code = 'FENCED';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'FencedError';
  }
}

/** A checkpoint refused because the job is being cancelled (its key was fenced by the cancel): the attempt ends as cancelled. */
export class JobCancelledError extends FencedError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'JobCancelledError';
  }
}

/** Checkpoints are refused above the KV value limit rather than stored elsewhere. */
export class CheckpointTooLargeError extends Error {
  readonly code = 'CHECKPOINT_TOO_LARGE';
  constructor(jobId: string, bytes: number, limit: number, options?: ErrorOptions) {
    super(
      `checkpoint of job ${jobId} is ${bytes} bytes encoded; the limit is ${limit} (keep checkpoint state small: store big data elsewhere and checkpoint a reference)`,
      options,
    );
    this.name = 'CheckpointTooLargeError';
  }
}

/**
 * Thrown by a handler: the attempt fails and the job fails with it, no retry (bad data, a refused request).
 * Recognised by name too, so a copy of the class from another install of the package counts.
 */
export class NonRetryableError extends Error {
  readonly code = 'NON_RETRYABLE';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NonRetryableError';
  }
}

/** No connection to any of the NATS servers given (or the default one). */
export class NatsConnectError extends Error {
  readonly code = 'NATS_CONNECT';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NatsConnectError';
  }
}

/** A setting that is out of range or of the wrong kind (node options, a config file): the message names it. */
export class ConfigError extends Error {
  readonly code = 'BAD_CONFIG';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigError';
  }
}
