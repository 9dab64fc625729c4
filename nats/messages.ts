// Internal CBOR messages between leader and nodes (placement). KV stays the
// truth: losing any of these only delays work.
import { z } from 'zod';
import { jobRecordSchema, jobStates, requirementsSchema, traceSchema } from '../api/contract.ts';

export const offerSchema = z.object({
  epoch: z.number(),
  jobs: z.array(z.object({
    id: z.string(),
    type: z.string(),
    priority: z.number(),
    lastNode: z.string().nullable(),
    requires: requirementsSchema.nullable().optional(),
  })),
});
export type Offer = z.infer<typeof offerSchema>;

export const bidSchema = z.object({
  node: z.string(),
  free: z.number(),
  /** Memory and GPUs it has free (absent: no limit). */
  freeUsage: z.object({ memMb: z.number(), gpu: z.number() }).optional(),
  bids: z.array(z.object({ id: z.string(), score: z.number() })),
});
export type Bid = z.infer<typeof bidSchema>;

export const jobIdsSchema = z.object({ ids: z.array(z.string()) });

/** Jobs a node won, each as the leader wrote it (record and revision): the winner starts it by CAS on that revision, no read first. */
export const assignmentSchema = z.object({
  jobs: z.array(z.object({ value: jobRecordSchema, revision: z.number() })),
  /** Preemption: running attempts that give their slots to these jobs at once, each allowed `graceMs` to checkpoint. */
  preempt: z.array(z.object({ id: z.string(), attempt: z.number() })).optional(),
  graceMs: z.number().optional(),
  /** `dispatch`: the owner's lease term the jobs were assigned in (a node in another term refuses them). */
  epoch: z.number().nullable().optional(),
});
export type Assignment = z.infer<typeof assignmentSchema>;

/** A node's answer to an assignment it was asked to acknowledge: the jobs it took, and those it refused with why. */
export const assignAckSchema = z.object({
  accepted: z.array(z.string()),
  refused: z.array(z.object({ id: z.string(), reason: z.string() })),
});
export type AssignAck = z.infer<typeof assignAckSchema>;

/** A submit as an API node validated it, forwarded to the dispatcher (`at`: when the API node got it). */
export const intakeItemSchema = z.object({
  id: z.string(),
  type: z.string(),
  input: z.unknown(),
  priority: z.number(),
  maxAttempts: z.number(),
  timeoutMs: z.number(),
  requires: requirementsSchema.nullable(),
  pendingTimeoutMs: z.number().nullable(),
  retentionMs: z.number().nullable().optional(),
  /** Not placed before (wall ms; 0: at once). */
  notBefore: z.number().optional(),
  trace: traceSchema.nullable().optional(),
  at: z.number(),
});
export type IntakeItem = z.infer<typeof intakeItemSchema>;
export const intakeSchema = z.object({ jobs: z.array(intakeItemSchema) });

/** The dispatcher's answer per submit: as the API answers it, or the error to answer with. */
export const intakeResultSchema = z.union([
  z.object({ id: z.string(), state: z.enum(jobStates), created: z.boolean() }),
  z.object({ id: z.string(), error: z.object({ status: z.number(), code: z.string(), message: z.string() }) }),
]);
export type IntakeResult = z.infer<typeof intakeResultSchema>;
export const intakeReplySchema = z.object({ results: z.array(intakeResultSchema) });
