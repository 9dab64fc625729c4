// One process incarnation's connection to the simulated server, with the
// faults pending on it, and the errors a simulated request can end with
// (the same names nats.js gives them). The network that moves bytes over these
// connections is net.ts.
import type { NodeInbox } from '../../nats/placement.ts';
import type { Intake } from '../../nats/dispatch.ts';
import type { ClockView } from './clock.ts';

export class SimTimeoutError extends Error {
  constructor(what: string) {
    super(`${what}: TIMEOUT`);
    this.name = 'TimeoutError';
  }
}

export class SimNoResponders extends Error {
  constructor(what: string) {
    super(`${what}: no responders`);
    this.name = 'NoRespondersError';
  }
}

export type NetStats = {
  messages: number;
  droppedRequests: number;
  droppedReplies: number;
  droppedMessages: number;
  delayed: number;
  duplicated: number;
  lost: number;
};

/** One process incarnation's connection to the server. */
export class Conn {
  readonly node: string;
  readonly instance: string;
  readonly view: ClockView;
  /** As the server sees it: 'closed' once it dropped the connection (or the process died or left). */
  server: 'open' | 'closed' = 'open';
  /** As the client sees it. */
  client: 'connected' | 'reconnecting' | 'gone' = 'connected';
  /** Blackhole: bytes held both ways until heal. */
  split = false;
  /** Reset: the link refuses connections until heal. */
  cut = false;
  dead = false;
  /** Bumped whenever the connection closes: bytes in flight on the old one are lost. */
  generation = 0;
  /** Extra one-way latency (ms). */
  slowMs = 0;
  dropRequests = 0;
  dropReplies = 0;
  duplicates = 0;
  /** Core request/reply messages (assignments, intakes) to lose, each before or after it is handled, and to hold back. */
  dropMessages = 0;
  delayMessages: number[] = [];
  /** Armed by the `crash-dispatcher` fault: this process dies as it is about to send its next assignments. */
  crashBeforeAssign = false;
  /** SIGKILL this process (set by the world). */
  crash: () => void = () => {};
  lastUp = 0;
  lastDown = 0;
  silentSince: number | null = null;
  reconnects = 0;
  /** Sent while the client knew it was disconnected: flushed on reconnect (nats.js buffers them). */
  outbox: Array<() => void> = [];
  /** What a blackhole holds, in order. */
  heldUp: Array<() => void> = [];
  heldDown: Array<{ fn: () => void; reliable: boolean }> = [];
  /** Watch entries the server could not push yet: the ordered consumer catches up after a reconnect. */
  backlog: Array<() => void> = [];
  inbox: NodeInbox | null = null;
  /** The dispatcher's intake, while this process dispatches. */
  intake: Intake | null = null;
  readonly queued = new Set<() => void>();
  readonly watches = new Set<{ stop(): void }>();
  onStatus: (s: 'disconnected' | 'reconnected') => void = () => {};

  constructor(node: string, instance: string, view: ClockView) {
    this.node = node;
    this.instance = instance;
    this.view = view;
  }
  /** Both ends hold the connection open. */
  get open(): boolean {
    return !this.dead && this.server === 'open' && this.client === 'connected';
  }
}
