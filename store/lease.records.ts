// What a lease key holds (holder, epoch, and for a node its advert), read and
// decoded; and the cluster as the leases bucket shows it: who leads, which
// nodes are alive.
import { z } from 'zod';
import type { LeaseHolder } from '../machines/lease.machine.ts';
import type { ClusterView } from '../api/contract.ts';
import type { Bucket } from './bucket.ts';
import { decode } from './codec.ts';
import { keys } from './keys.ts';

export const holderSchema = z.object({ id: z.string(), instance: z.string() });

export const nodeAdvertSchema = z.object({
  pid: z.number(),
  host: z.string(),
  runtime: z.string(),
  slots: z.number(),
  labels: z.record(z.string(), z.string()),
  state: z.string(),
  startedAt: z.number(),
  /** Job types this node handles. */
  types: z.array(z.string()),
  /** Their concurrency limits across the cluster, where declared. */
  limits: z.record(z.string(), z.number()).optional(),
  /** Jobs it runs now. */
  running: z.number(),
  /** How it scores bids: `onnx:<model version>`, `heuristic`, or `heuristic (fallback: <reason>)`. */
  policy: z.string().optional(),
  /** How it places jobs while it leads: `auction`, `centralized` or `pull`. */
  placement: z.string().optional(),
  /** Its speed factor (`--speed`; 1 unless set). */
  speed: z.number().optional(),
  /** Jobs that may wait on I/O without a compute slot (`--io-slots`). */
  ioSlots: z.number().optional(),
  /** Memory it offers jobs, MB (absent: no limit), and GPUs. */
  memMb: z.number().optional(),
  gpu: z.number().optional(),
  /** The node's wall clock when it wrote this (beside the server's timestamp of the write: its clock skew). */
  writtenAt: z.number().optional(),
});
export type NodeAdvert = z.infer<typeof nodeAdvertSchema>;

export const leaseValueSchema = z.object({
  holder: holderSchema,
  /** The acquiring revision; null until the first renewal can write it. */
  epoch: z.number().nullable(),
  /** Wall-clock ms when this holder acquired the lease. */
  since: z.number(),
  node: nodeAdvertSchema.optional(),
  /** The leader's warm standby (`dispatch` placement): it keeps a copy of the job table and alone pings the leader. */
  standby: z.string().optional(),
});
export type LeaseValue = z.infer<typeof leaseValueSchema>;

/** Liveness of a lease's holder: 'gone' only on evidence ("no responders"), 'unknown' on a timeout. */
export type Liveness = 'alive' | 'gone' | 'unknown';

/** Is this holder's process still connected? (Pings over NATS in a real process: nats/probe.ts.) */
export type Probe = (holder: LeaseHolder) => Promise<Liveness>;

export type LeaseRecord = { key: string; value: LeaseValue; revision: number; epoch: number; written: Date };

export function decodeLease(key: string, bytes: Uint8Array, revision: number, written: Date): LeaseRecord {
  const value = decode(leaseValueSchema, bytes, `lease '${key}'`);
  return { key, value, revision, epoch: value.epoch ?? revision, written };
}

export async function readLease(kv: Bucket, key: string): Promise<LeaseRecord | null> {
  const e = await kv.get(key);
  return e ? decodeLease(key, e.value, e.revision, e.created) : null;
}

/** Who leads and which nodes are alive, straight from the leases bucket. */
export async function readCluster(kv: Bucket): Promise<ClusterView> {
  const leader = await readLease(kv, keys.leader);
  const nodes: ClusterView['nodes'] = [];
  for (const key of (await kv.keys(keys.nodes)).sort()) {
    const node = clusterNodeOf(await readLease(kv, key));
    if (node) nodes.push(node);
  }
  return {
    leader: leader
      ? {
        nodeId: leader.value.holder.id,
        epoch: leader.epoch,
        since: new Date(leader.value.since).toISOString(),
        ...(leader.value.standby ? { standby: leader.value.standby } : {}),
      }
      : null,
    nodes,
  };
}

/** A live node as status shows it, from its lease (null: no lease, or one without an advert). */
export function clusterNodeOf(l: LeaseRecord | null): ClusterView['nodes'][number] | null {
  if (!l?.value.node) return null;
  const a = l.value.node;
  return {
    id: l.value.holder.id,
    pid: a.pid,
    host: a.host,
    runtime: a.runtime,
    state: a.state,
    slots: a.slots,
    running: a.running,
    types: a.types,
    limits: a.limits ?? {},
    labels: a.labels,
    policy: a.policy ?? 'unknown',
    placement: a.placement ?? 'auction',
    speed: a.speed ?? 1,
    ioSlots: a.ioSlots ?? 0,
    memMb: a.memMb ?? null,
    gpu: a.gpu ?? 0,
    lastSeen: l.written.toISOString(),
    clockSkewMs: a.writtenAt === undefined ? null : a.writtenAt - l.written.getTime(),
    epoch: l.epoch,
  };
}
