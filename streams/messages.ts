// Internal CBOR messages between leader and nodes (placement). KV stays the
// truth: losing any of these only delays work.
import { z } from 'zod';
import { jobRecordSchema } from './job.store.ts';

export const offerSchema = z.object({
  epoch: z.number(),
  jobs: z.array(z.object({ id: z.string(), type: z.string(), priority: z.number(), lastNode: z.string().nullable() })),
});
export type Offer = z.infer<typeof offerSchema>;

export const bidSchema = z.object({
  node: z.string(),
  free: z.number(),
  bids: z.array(z.object({ id: z.string(), score: z.number() })),
});
export type Bid = z.infer<typeof bidSchema>;

export const jobIdsSchema = z.object({ ids: z.array(z.string()) });

/** Jobs a node won, each as the leader wrote it (record and revision): the winner starts it by CAS on that revision, no read first. */
export const assignmentSchema = z.object({
  jobs: z.array(z.object({ value: jobRecordSchema, revision: z.number() })),
});
