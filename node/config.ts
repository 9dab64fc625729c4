// A node's settings, resolved once. `NodeOptions` is what a user gives (every
// field optional, each with its default); `resolveNodeConfig` checks them and
// fills in every default, giving the `NodeConfig` that is passed down in
// slices (capacity to the runner, preemption to the leader, …). No layer below
// applies a fallback of its own. Where the options come from is the caller's:
// the CLI layers flag > env > config file (cli/config.ts) and passes what was
// set; an application embedding a node passes its own.
import { totalmem } from 'node:os';
import { defaults } from '../base/defaults.ts';
import { ConfigError } from '../base/errors.ts';
import type { ConnectionFlags } from '../nats/connect.ts';
import { defaultPreemption, type PreemptionRules } from '../policies/preemption.ts';
import { placementStrategies, type PlacementStrategy } from '../policies/placement.ts';

export type NodeOptions = ConnectionFlags & {
  /** Node id: letters, digits, - or _; unique among live nodes. @default `node-<8 random hex digits>` */
  id?: string;
  /** Compute slots: jobs computed at once. @default 4 */
  slots?: number;
  /** Jobs that may wait on I/O (`ctx.phase('io')`) without a compute slot; 0: a job in I/O keeps its slot. @default 16 */
  ioSlots?: number;
  /** Memory (MB) offered to jobs that require it. @default the host's memory */
  memMb?: number;
  /** GPUs offered to jobs that require them. @default 0 */
  gpu?: number;
  /** Labels jobs can require. @default {} */
  labels?: Record<string, string>;
  /** How this node preempts while it leads. @default on: 1000 ms grace, 3 preemptions per job then a 30 s cooldown */
  preemption?: Partial<PreemptionRules>;
  /** Lease TTL (ms), one value for the whole cluster. @default the leases bucket's; a new bucket: 5000 (20000 with replicas > 1) */
  leaseTtlMs?: number;
  /** Prefix of every subject, bucket and stream. @default 'shoal' */
  prefix?: string;
  /** JetStream replicas of the buckets and streams this node creates. @default 1 */
  replicas?: number;
  /** Ping lease holders for fast failover; off: wait for a lease to expire (a benchmark baseline). @default true */
  fastPath?: boolean;
  /** How this node places jobs while it leads. @default 'dispatch' */
  placement?: PlacementStrategy;
  /** Bid scorer: 'onnx' (the shipped model), 'heuristic', or a path to a .onnx model with its spec beside it. @default 'onnx' */
  policy?: string;
  /** Speed factor: handlers' sleeps take 1/speed of the time asked; a bid feature. @default 1 */
  speed?: number;
  /** A module of job handlers added to the built-ins. @default none */
  jobs?: string;
  /** Serve Prometheus metrics on this port. @default none */
  metricsPort?: number;
  /** Address the metrics server listens on. @default '127.0.0.1' */
  metricsHost?: string;
  /** Inbox prefixes besides `_INBOX…` that replies may go to (clients with their own `inboxPrefix`). @default [] */
  replyPrefixes?: string[];
  /** Register the `exec` built-in (runs commands for whoever may submit). @default false */
  allowExec?: boolean;
  /** How long finished jobs' records and checkpoints stay, ms (applied by the leader; a job's own `retentionMs` wins). @default 7 days */
  retentionMs?: number;
  /** Run every handler on the node's own thread (no handler threads): a handler that never yields then stalls the node. @default false */
  inlineHandlers?: boolean;
};

/** What a node offers jobs: compute slots, the I/O limit beside them, memory (null: no limit), GPUs and labels. */
export type CapacityConfig = { slots: number; ioSlots: number; memMb: number | null; gpu: number; labels: Record<string, string> };

export type NodeConfig = {
  id: string;
  connection: ConnectionFlags;
  prefix: string;
  capacity: CapacityConfig;
  preemption: PreemptionRules;
  /** Null: adopt the leases bucket's TTL (or the default for a new bucket). */
  leaseTtlMs: number | null;
  replicas: number;
  fastPath: boolean;
  placement: PlacementStrategy;
  policy: string;
  speed: number;
  jobs: string | null;
  metrics: { port: number; host: string } | null;
  replyPrefixes: string[];
  allowExec: boolean;
  inlineHandlers: boolean;
  retentionMs: number;
};

const token = /^[A-Za-z0-9_-]+$/;

function check<T>(ok: boolean, value: T, what: string, expected: string): T {
  if (!ok) throw new ConfigError(`${what} must be ${expected} (got ${JSON.stringify(value)})`);
  return value;
}
const int = (v: number, what: string, min: number) => check(Number.isInteger(v) && v >= min, v, what, `a whole number ≥ ${min}`);
const positive = (v: number, what: string) => check(Number.isFinite(v) && v > 0, v, what, 'a positive number');

/** Check `options` and fill in every default; throws a `ConfigError` naming the first setting that is wrong. */
export function resolveNodeConfig(options: NodeOptions): NodeConfig {
  const {
    id,
    slots,
    ioSlots,
    memMb,
    gpu,
    labels,
    preemption,
    leaseTtlMs,
    prefix,
    replicas,
    fastPath,
    placement,
    policy,
    speed,
    jobs,
    metricsPort,
    metricsHost,
    replyPrefixes,
    allowExec,
    inlineHandlers,
    retentionMs,
    ...connection
  } = options;
  const set = Object.fromEntries(Object.entries(preemption ?? {}).filter(([, v]) => v !== undefined));
  const rules: PreemptionRules = { ...defaultPreemption, ...set };
  for (const k of ['graceMs', 'maxPreemptions', 'cooldownMs'] as const) int(rules[k], `preemption.${k}`, 1);
  for (const p of replyPrefixes ?? []) check(token.test(p), p, 'a reply prefix', 'one subject token: letters, digits, - or _');
  return {
    id: check(id === undefined || token.test(id), id, 'the node id', 'letters, digits, - or _') ??
      `node-${crypto.randomUUID().slice(0, 8)}`,
    connection,
    prefix: check(token.test(prefix ?? defaults.prefix), prefix, 'the prefix', 'letters, digits, - or _') ?? defaults.prefix,
    capacity: {
      slots: int(slots ?? defaults.slots, 'slots', 1),
      ioSlots: int(ioSlots ?? defaults.ioSlots, 'ioSlots', 0),
      memMb: int(memMb ?? Math.floor(totalmem() / 2 ** 20), 'memMb', 1),
      gpu: int(gpu ?? 0, 'gpu', 0),
      labels: { ...labels },
    },
    preemption: rules,
    leaseTtlMs: leaseTtlMs === undefined ? null : int(leaseTtlMs, 'leaseTtlMs', 1),
    replicas: int(replicas ?? defaults.replicas, 'replicas', 1),
    fastPath: fastPath ?? true,
    placement: check(placementStrategies.includes(placement ?? 'dispatch'), placement, 'placement', placementStrategies.join(', ')) ??
      'dispatch',
    policy: policy ?? 'onnx',
    speed: positive(speed ?? 1, 'speed'),
    jobs: jobs ?? null,
    metrics: metricsPort === undefined ? null : { port: int(metricsPort, 'metricsPort', 1), host: metricsHost ?? defaults.metricsHost },
    replyPrefixes: [...(replyPrefixes ?? [])],
    allowExec: allowExec ?? false,
    inlineHandlers: inlineHandlers ?? false,
    retentionMs: int(retentionMs ?? defaults.retentionMs, 'retentionMs', 1_000),
  };
}
