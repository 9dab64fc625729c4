// What a node is assembled from and what the assembly hands back: the options
// a real process or the simulation passes to `wireNode` (node.wiring.ts), and
// the parts it exposes once bootstrapped.
import type { CapacityConfig } from './config.ts';
import type { InspectionEvent } from 'xstate';
import type { JobRecord, TypeSettings } from '../api/contract.ts';
import type { TypeCatalog } from './input.schemas.ts';
import type { PlacementPolicy } from '../policies/placement.ts';
import type { PreemptionRules } from '../policies/preemption.ts';
import type { Bucket } from '../store/bucket.ts';
import type { Recorder } from '../nats/events.ts';
import type { JobStore } from '../store/job.store.ts';
import type { Probe } from '../store/lease.records.ts';
import type { NodeInbox, Notify, PlacementTransport } from '../nats/placement.ts';
import type { Clock } from '../base/time.ts';
import type { Endpoint } from '../nats/service.ts';
import type { EndpointName } from '../api/contract.ts';
import type { IntakeWire } from '../nats/dispatch.ts';
import type { Handler } from './handlers.ts';
import type { JobIndex } from './job.index.ts';
import type { JobRunner } from './job.runner.ts';
import type { Log } from './log.ts';
import type { createActor } from 'xstate';
import type { nodeMachine } from '../machines/node.machine.ts';

export type NodeBuckets = { leases: Bucket; jobs: Bucket; checkpoints: Bucket; leaseTtlMs: number };

/** What a node tells its metrics, beside its transitions. */
export type NodeObserver = {
  /** A record this node wrote by CAS (`prev` null for a create). */
  jobWritten?(prev: JobRecord | null, next: JobRecord): void;
  checkpointSaved?(bytes: number, ms: number): void;
  /** One auction this node ran as leader: how long from offer to assignments written, jobs offered and assigned. */
  auction?(ms: number, offered: number, awarded: number): void;
};

export type NodeParts = {
  leases: Bucket;
  jobs: Bucket;
  checkpoints: Bucket;
  store: JobStore;
  runner: JobRunner;
  /** The job index (a watch of every record), started on first use: on every node without a dispatcher, else on the dispatcher only. */
  index: () => JobIndex;
  /** The index if it runs (metrics read it without starting one). */
  indexIfAny: () => JobIndex | null;
  /** Stop the index (a dispatcher's term ended). */
  dropIndex: () => void;
};

/** `dispatch` placement: how the dispatcher is reached and serves. */
export type DispatchWiring = {
  /** The intake subject (API nodes forward submits on it; the dispatcher serves it). */
  wire: IntakeWire;
  /** Serve these public endpoints (status, jobs.wait) while dispatching, every answering node in a queue group of its own; returns the stop. */
  serveReads: (endpoints: Partial<Record<EndpointName, Endpoint>>) => () => void;
};

export type NodeWiringOptions = {
  nodeId: string;
  instance: string;
  /** What this node offers jobs (node/config.ts). */
  capacity: CapacityConfig;
  /** How this node preempts while it leads. */
  preemption: PreemptionRules;
  handlers: Record<string, Handler>;
  log: Log;
  clock: Clock;
  /** Find or create the buckets (a real node waits for JetStream here). */
  bootstrap: () => Promise<NodeBuckets>;
  probe: Probe;
  /** Whether a first "no responders" is already final (a lone server); otherwise it is confirmed by a second ping. */
  goneIsFinal?: () => boolean;
  /** How much later a second "no responders" confirms the first where it is not final. */
  probeConfirmMs: number;
  placement: PlacementTransport;
  /** How this node bids and, while it leads, awards. */
  policy: PlacementPolicy;
  /** With a dispatching policy: how submits reach the dispatcher and how it serves (required then). */
  dispatch?: DispatchWiring;
  /** The dispatcher's sampling randomness (default Math.random; the simulation's is seeded). */
  random?: () => number;
  /** What the API endpoints tell other nodes. */
  notify: Notify;
  /** A drain request for this node (default: the node machine's `drain`). */
  onDrainRequest?: () => void;
  /** Job types as a submit sees them: input checks and settings (none: every input accepted, the defaults apply). */
  types?: TypeCatalog;
  /** Job types' settings this node's runner applies (their retry backoff). */
  settings?: Record<string, TypeSettings>;
  /** Told of what metrics count (records written, checkpoints saved, auctions run). */
  observer?: NodeObserver;
  /** Also told of every inspection event of the node's actors (the live inspector feed, coverage). */
  inspect?: (ev: InspectionEvent) => void;
  /** Turns transitions and job writes into the history. */
  recorder: Recorder;
  /** Off: no pings, so failover waits for the lease TTL (benchmark baseline). */
  fastPath: boolean;
  /** How long a cut-off node keeps its handlers, and how long recovery waits before moving an ended term's jobs (defaults: base/defaults.ts). */
  fence?: { cutOffMs: number; reapGraceMs: number };
  /** How long finished jobs' records stay, when this node leads (`defaults.retentionMs`). */
  retentionMs?: number;
  /** The advert's facts about the process. */
  advert: {
    pid: number;
    host: string;
    runtime: string;
    startedAt: number;
    /** Its bid scorer as status shows it (`onnx:<version>`, `heuristic`, `heuristic (fallback: …)`). */
    policy: string;
    /** How it places while it leads: auction, centralized, pull. */
    placement: string;
  };
  /** This node's speed factor: scales handlers' sleeps and is a bid feature. */
  speed: number;
  /** Called once the node has its buckets (a real node opens its event stream). */
  onBootstrapped?: (b: NodeBuckets) => void;
};

export type WiredNode = {
  actor: NodeActor;
  /** The NATS connection dropped (false) or came back (true): the node machine suspends leadership meanwhile. */
  connection(up: boolean): void;
  /** The node's answers to placement messages. */
  inbox: NodeInbox;
  /** The public API's endpoints as this node serves them (503 until bootstrapped). */
  api: Partial<Record<EndpointName, Endpoint>>;
  /** Null until bootstrapped. */
  parts: () => NodeParts | null;
  /** It holds a valid leader lease now (by the real clock). */
  leading: () => boolean;
  /** Release what the actor does not own (the index's watch). */
  stop(): void;
};

export type NodeActor = ReturnType<typeof createActor<typeof nodeMachine>>;
