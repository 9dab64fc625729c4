// What a client's `job.result()` rejects with when the job did not succeed:
// the job's final record rides along (its error, attempts, owner).
import type { JobRecord } from '../api/contract.ts';

export class JobFailedError extends Error {
  readonly code = 'JOB_FAILED';
  readonly record: JobRecord;
  constructor(record: JobRecord) {
    super(`job '${record.id}' (${record.type}) failed after ${record.attempts.length} attempt(s): ${record.error ?? 'no error recorded'}`);
    this.name = 'JobFailedError';
    this.record = record;
  }
}

export class JobCancelledError extends Error {
  readonly code = 'JOB_CANCELLED';
  readonly record: JobRecord;
  constructor(record: JobRecord) {
    super(`job '${record.id}' (${record.type}) was cancelled`);
    this.name = 'JobCancelledError';
    this.record = record;
  }
}
