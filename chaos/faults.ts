// One fault vocabulary for both layers of the chaos suite: the real-process
// runs (chaos/real/) and the simulation (chaos/sim/) use these names in their
// schedules, logs, reports and docs/chaos.md. A fault is plain data, so a
// schedule prints, saves and replays; `describeFault` writes it as a log line.

/** reset: connections drop at once; blackhole: bytes held until heal; drop: bytes lost (see chaos/real/proxy.ts). */
export type PartitionMode = 'reset' | 'blackhole' | 'drop';

/** Every fault by name: what it does, and which layer injects it. */
export const faultCatalog = {
  kill: { does: 'SIGKILL a node process', real: true, sim: true },
  'kill-leader': { does: 'SIGKILL whichever node leads at that moment', real: true, sim: true },
  restart: { does: 'start a killed node again: a new process under the same node id', real: true, sim: true },
  pause: { does: 'SIGSTOP a node; real runs send SIGCONT after `ms`, the simulation at a later `resume`', real: true, sim: true },
  resume: { does: 'SIGCONT a paused node (overdue timers fire at once)', real: false, sim: true },
  partition: {
    does:
      'cut a node off from every nats-server (reset, blackhole; real runs also drop); real runs heal after `ms`, the simulation at a later `heal`',
    real: true,
    sim: true,
  },
  'partition-leader': { does: 'partition whichever node leads at that moment', real: true, sim: false },
  heal: { does: 'end a partition: held bytes are delivered, the client reconnects', real: false, sim: true },
  latency: { does: "add latency to every one of a node's links (for `ms` in real runs)", real: true, sim: true },
  'kill-server': {
    does: 'SIGKILL one nats-server of the 3-server cluster, restart it (same ports and store) after `ms`',
    real: true,
    sim: false,
  },
  'cut-leaf': {
    does: 'cut the leaf-node link between the edge site and the core (reset, blackhole or drop), heal it after `ms`; only with --leaf',
    real: true,
    sim: false,
  },
  drain: { does: 'SIGTERM a node: it hands its jobs back, steps down, releases its lease and exits', real: false, sim: true },
  'drop-requests': { does: "lose a node's next `count` KV requests before the server applies them", real: false, sim: true },
  'drop-replies': { does: "lose the replies to a node's next `count` KV requests after the server applied them", real: false, sim: true },
  duplicate: { does: 'deliver the next bus message to a node (offer, assignment, cancel, intake) twice', real: false, sim: true },
  'drop-messages': {
    does:
      "lose a node's next `count` core messages (assignments it is sent, intakes it sends or serves), each before or after it is handled",
    real: false,
    sim: true,
  },
  'delay-messages': {
    does: "hold a node's next core message (an assignment or intake it sends) back `delayMs`, so later ones overtake it",
    real: false,
    sim: true,
  },
  'crash-dispatcher': {
    does: 'SIGKILL the dispatcher (the leader) between committing records and sending their assignments',
    real: false,
    sim: true,
  },
  'kill-standby': { does: "SIGKILL the dispatcher's warm standby (the node the leader lease names)", real: true, sim: true },
  'pause-leader': {
    does: 'SIGSTOP whichever node leads (a stale dispatcher once its lease is gone); real runs send SIGCONT after `ms`',
    real: true,
    sim: true,
  },
} as const;

export type FaultKind = keyof typeof faultCatalog;

/** Nodes and servers are numbered from 0 and shown as n1, s1. */
export type Fault =
  | { kind: 'kill'; node: number }
  | { kind: 'kill-leader' }
  | { kind: 'restart'; node: number }
  | { kind: 'pause'; node: number; ms?: number }
  | { kind: 'resume'; node: number }
  | { kind: 'partition'; node: number; mode: PartitionMode; ms?: number }
  | { kind: 'partition-leader'; mode: PartitionMode; ms?: number }
  | { kind: 'heal'; node: number }
  | { kind: 'latency'; node: number; delayMs: number; ms?: number }
  | { kind: 'kill-server'; server: number; ms: number }
  | { kind: 'cut-leaf'; mode: PartitionMode; ms?: number }
  | { kind: 'drain'; node: number }
  | { kind: 'drop-requests'; node: number; count: number }
  | { kind: 'drop-replies'; node: number; count: number }
  | { kind: 'duplicate'; node: number }
  | { kind: 'drop-messages'; node: number; count: number }
  | { kind: 'delay-messages'; node: number; delayMs: number }
  | { kind: 'crash-dispatcher' }
  | { kind: 'kill-standby' }
  | { kind: 'pause-leader'; ms?: number };

export const nodeName = (i: number) => `n${i + 1}`;
export const serverName = (i: number) => `s${i + 1}`;

/** One line per fault, like a log: `kill(n2)`, `pause(n1, 1500ms)`, `partition(n3, blackhole)`. */
export function describeFault(f: Fault): string {
  const args: Array<string | number | undefined> = [];
  if ('node' in f) args.push(nodeName(f.node));
  if ('server' in f) args.push(serverName(f.server));
  if ('mode' in f) args.push(f.mode);
  if ('delayMs' in f) args.push(`+${f.delayMs}ms`);
  if ('count' in f) args.push(f.count);
  if ('ms' in f && f.ms !== undefined) args.push(`${f.ms}ms`);
  return args.length ? `${f.kind}(${args.join(', ')})` : f.kind;
}

/** How long a fault lasts once started (0 for instant ones and for those ended by another fault). */
export function faultDurationMs(f: Fault | { kind: 'submit' }): number {
  return 'ms' in f ? f.ms ?? 0 : 0;
}

/** The kind of a logged fault line: `pause(n1, 1500ms)` → `pause`. */
export const kindOf = (line: string) => line.replace(/\(.*$/, '');

/** The partitions the simulation models (a dropped stream of messages is its own `drop` fault there). */
export type SimPartitionMode = Exclude<PartitionMode, 'drop'>;
