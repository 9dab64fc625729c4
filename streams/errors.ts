// Every error condition Shoal reports, one class each, with a `code` callers
// branch on and `cause` preserved.

export class CodecError extends Error {
  readonly code = 'BAD_PAYLOAD';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CodecError';
  }
}

/** A public API failure: `status` is the micro-service error code (400, 404, 409, 413, 500, 503). */
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
