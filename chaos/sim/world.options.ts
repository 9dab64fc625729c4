// What a simulated cluster is built from: its options, and the deliberately
// broken variants the simulation must catch (world.ts builds the cluster).
import type { InspectionEvent } from 'xstate';
import { MemKv } from './memkv.ts';

/** Deliberately broken variants, to show the simulation catches and shrinks them. */
export type SimVariant = {
  /** KV update ignores the expected revision (nats-server 2.9.10's clustered CAS bug). */
  casIgnoresRevision?: boolean;
  /** A node cut off from NATS keeps running its handlers, and recovery moves a reaped node's jobs at once (the design before the cut-off fence). */
  noCutOffFence?: boolean;
};

export type WorldOptions = {
  seed: number;
  nodes: number;
  /** Lease TTL (cluster-wide); the other lease timings derive from it. */
  ttlMs?: number;
  slots?: number;
  variant?: SimVariant;
  /** Told of every inspection event of every node's actors (the coverage test). */
  inspect?: (ev: InspectionEvent) => void;
  /** How the leader places jobs (default: dispatch). */
  placement?: 'dispatch' | 'auction';
  /** Nodes' wall clocks are off by up to this much each way (default `simDefaults.clockSkewMs`; 0: none). */
  clockSkewMs?: number;
};

export class BrokenCasKv extends MemKv {
  override async update(key: string, value: Uint8Array, _revision: number): Promise<number> {
    return this.put(key, value);
  }
}
