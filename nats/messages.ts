// Internal CBOR messages between leader and nodes (placement). KV stays the
// truth: losing any of these only delays work.
import { z } from 'zod';
import { jobRecordSchema, requirementsSchema } from '../api/contract.ts';

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
});
export type Assignment = z.infer<typeof assignmentSchema>;
