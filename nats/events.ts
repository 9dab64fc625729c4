// Every transition of every machine, published as CBOR on
// `<prefix>.evt.<kind>.<actor>` and kept in the events stream: the history
// that tests, benchmarks and the chaos checker read.
import { DeliverPolicy, jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { InspectionEvent, StateValue } from 'xstate';
import { stateString } from '../machines/state.value.ts';
import { z } from 'zod';
import { decode, encode } from '../store/codec.ts';
import { defaults } from '../base/defaults.ts';
import type { Names } from './subjects.ts';
import type { JobRecord } from '../api/contract.ts';
import type { JobChange } from '../store/job.store.ts';
import { type Clock, realClock, sleep } from '../base/time.ts';
import { jsOptions } from './connect.ts';
import { Batcher } from '../base/batcher.ts';

export const transitionSchema = z.object({
  /** Machine id: node, coordinator, lease. */
  kind: z.string(),
  /** Actor id within its kind, e.g. `n1` or `n1-leader` (a subject token). */
  actor: z.string(),
  node: z.string(),
  instance: z.string(),
  pid: z.number(),
  from: z.string().nullable(),
  to: z.string(),
  /** The event that caused the transition. */
  event: z.string(),
  /** Fencing token (lease revision) the actor held at that moment, if any. */
  epoch: z.number().nullable(),
  wall: z.number(),
  mono: z.number(),
  /** Per-process sequence: orders one process's events. */
  seq: z.number(),
  /** Kind-specific facts (jobs: progress, resumedFrom, result...). */
  data: z.record(z.string(), z.unknown()).optional(),
});
export type Transition = z.infer<typeof transitionSchema>;

/**
 * A leader acts when it starts a duty pass (recovery, which its first entry
 * into leadership also is). Finishing a pass begun while the lease was valid,
 * and the placement loop's own per-round lease check, are not new actions.
 */
export const isLeaderAction = (t: Transition) => t.kind === 'coordinator' && t.to === 'active.leader.recovering' && t.epoch !== null;

type MachineLikeSnapshot = {
  value: StateValue;
  status: string;
  context: Record<string, unknown>;
  machine: { id: string };
};

function isMachineSnapshot(s: unknown): s is MachineLikeSnapshot {
  return typeof s === 'object' && s !== null && 'machine' in s && 'value' in s;
}

/** Who records: the process a transition comes from. */
export type RecorderOptions = {
  node: string;
  instance: string;
  pid: number;
  /** Wall and monotonic time of each transition. */
  clock?: Clock;
  /** Receives every transition, in order. */
  sink: (t: Transition) => void;
};

/** Actor id for the event subject: the node id, plus the lease's key kind. */
export function actorId(node: string, snap: Pick<MachineLikeSnapshot, 'machine' | 'context'>): string {
  if (snap.machine.id === 'lease') {
    const key = String(snap.context.key ?? 'lease');
    return `${node}-${key.split('.')[0]}`;
  }
  return node;
}

/**
 * The pure half of the publisher: XState inspection events → `Transition`s
 * (one per change of state value), and `record` for things that are not live
 * actors here (job records written by CAS). A real node sinks them into
 * JetStream, the simulation into an array: both see the same history.
 */
export function transitionRecorder(options: RecorderOptions) {
  const clock = options.clock ?? realClock;
  const last = new Map<string, string>();
  let seq = 0;
  /** When each event reached its actor, before its guards ran: a transition's time (its effects run before its snapshot is reported, and a SIGSTOP there must not date the decision to the wake). */
  const relayedAt = new WeakMap<object, { wall: number; mono: number }>();
  /** `wall` defaults to now; a job write passes the time its writer decided it (before the CAS), so causes order before effects. */
  const record = (f: Omit<Transition, 'node' | 'instance' | 'pid' | 'seq' | 'wall' | 'mono'> & Partial<Transition>) => {
    const t: Transition = {
      ...f,
      node: options.node,
      instance: options.instance,
      pid: options.pid,
      wall: f.wall ?? clock.now(),
      mono: f.mono ?? clock.mono(),
      seq: ++seq,
    };
    if (t.data === undefined) delete t.data;
    options.sink(t);
  };

  const inspect = (ev: InspectionEvent) => {
    if (ev.type === '@xstate.event') {
      relayedAt.set(ev.event, { wall: clock.now(), mono: clock.mono() });
      return;
    }
    if (ev.type !== '@xstate.snapshot' || !isMachineSnapshot(ev.snapshot)) return;
    const snap = ev.snapshot;
    const session = ev.actorRef.sessionId;
    const to = stateString(snap.value);
    const from = last.get(session) ?? null;
    if (from === to) return;
    last.set(session, to);
    const epoch = typeof snap.context.epoch === 'number' ? snap.context.epoch : null;
    // A lease's validity (holder's monotonic ms) lets a checker tell when it was live.
    const validUntil = snap.machine.id === 'lease' && typeof snap.context.validUntil === 'number' ? snap.context.validUntil : undefined;
    record({
      kind: snap.machine.id,
      actor: actorId(options.node, snap),
      from,
      to,
      event: ev.event.type,
      epoch,
      data: validUntil === undefined ? undefined : { validUntil },
      ...relayedAt.get(ev.event),
    });
  };
  return { inspect, record };
}

export type Recorder = ReturnType<typeof transitionRecorder>;

const jobStateOf = (r: JobRecord) => (r.phase ? `${r.state}.${r.phase}` : r.state);

/**
 * How job activity enters the history: every record a node wrote by CAS, every
 * checkpoint it committed, and when each attempt's handler ran there. One
 * definition for real nodes and the simulation.
 */
export function jobHistory(record: Recorder['record']) {
  // Revisions give the commit order of a job's writes (a paused writer reports late; its write was fenced, or not, when it landed).
  const onChange: JobChange = (prev, next, event, revision, replaced, before = []) => {
    const start = before.find((e) => e.type === 'job.start');
    const assign = before.find((e) => e.type === 'job.assign');
    const assigned = event.type === 'job.assign' ? event : assign?.type === 'job.assign' ? assign : undefined;
    record({
      kind: 'job',
      actor: next.id,
      from: prev ? jobStateOf(prev) : null,
      to: jobStateOf(next),
      event: event.type,
      epoch: next.attempt,
      // The record's updatedAt is its event's time: a submit's create or the writer's decision, which the write's
      // reply (and so this call) can trail by tens of ms under load, after other nodes already acted on it.
      wall: next.updatedAt,
      data: {
        type: next.type,
        owner: next.owner,
        progress: next.progress,
        revision,
        replaced,
        ...(event.type === 'job.start' ? { resumedFrom: event.resumedFrom } : {}),
        // One write that also started the attempt (its first write of its own) or assigned a new job (created assigned).
        ...(start ? { started: true, resumedFrom: start.resumedFrom } : {}),
        ...(assign ? { assigned: true } : {}),
        ...(assigned?.round ? { round: assigned.round } : {}),
        // The lease term the assignment names: the handler must run in it (the checker's handler-in-term).
        ...(typeof assigned?.nodeEpoch === 'number' ? { term: assigned.nodeEpoch } : {}),
        ...(next.state === 'succeeded' ? { result: next.result } : {}),
        ...(next.type === 'primes' && prev === null ? { input: next.input } : {}),
        // Its priority and requirements, once (the checker's priority order reads them).
        ...(prev === null ? { priority: next.priority, ...(next.requires ? { requires: true } : {}) } : {}),
      },
    });
  };
  /** `revision`: of the checkpoint key, so checkpoints order against the claims of later attempts. */
  const onCheckpoint = (id: string, attempt: number, progress: number, revision: number) =>
    record({
      kind: 'job',
      actor: id,
      from: 'running',
      to: 'running',
      event: 'job.checkpoint',
      epoch: attempt,
      data: { progress, revision },
    });
  /**
   * The handler of `attempt` here: began (citing its claim's checkpoint revision, its lease term, the assignment's
   * record revision and this node's slots), gave its compute slot back for I/O or took one again, yielded its slot,
   * or this node stopped waiting for it (`end`).
   */
  const onHandler = (id: string, attempt: number, phase: HandlerPhase, facts?: HandlerFacts) =>
    record({
      kind: 'job',
      actor: id,
      from: 'running',
      to: 'running',
      event: handlerEvents[phase],
      epoch: attempt,
      data: facts,
    });
  return { onChange, onCheckpoint, onHandler };
}

/** A handler's life on a node: started, into I/O (its compute slot given back), computing again, yielded its slot (preempted, draining), ended. */
export type HandlerPhase = 'start' | 'io' | 'compute' | 'yield' | 'end';

/** What a handler's start cites: its checkpoint claim's revision, its lease term, the assignment's record revision, and the node's slots. */
export type HandlerFacts = { claimed?: number; term: number | null; assigned: number; slots: number; ioSlots: number };

export const handlerStart = 'job.handler.start';
export const handlerEnd = 'job.handler.end';
/** The history's event for each phase of a handler's life on a node. */
export const handlerEvents = {
  start: handlerStart,
  io: 'job.handler.io',
  compute: 'job.handler.compute',
  yield: 'job.handler.yield',
  end: handlerEnd,
} as const satisfies Record<HandlerPhase, string>;
export const leaseReaped = 'lease.reaped';

/**
 * The leader deleted a dead node's lease (its connection was gone): that
 * holder's lease term ends here, whatever validity its own clock still gives it.
 */
export function recordReap(record: Recorder['record'], holder: { id: string; instance: string }, epoch: number) {
  record({
    kind: 'lease',
    actor: `${holder.id}-node`,
    from: 'held',
    to: 'reaped',
    event: leaseReaped,
    epoch,
    data: { holder: holder.instance },
  });
}

export type PublisherOptions = {
  nc: NatsConnection;
  names: Names;
  node: string;
  instance: string;
  pid: number;
  /** Called on every transition (after it is queued for publishing). */
  onTransition?: (t: Transition) => void;
  onError?: (err: Error) => void;
  /** How long one publish waits for the stream's acknowledgement (default: the JetStream client's). */
  publishTimeoutMs?: number;
};

/** Many transitions in one stored message: what a node publishes (group commit: at once when none is in flight). */
export const eventBatchSchema = z.object({ events: z.array(transitionSchema) });

/** The transitions a stored or live event message holds: a batch, or one transition (as older nodes sent). */
export function transitionsOf(data: Uint8Array): Transition[] {
  const v = decode(z.union([eventBatchSchema, transitionSchema]), data, 'event message');
  return 'events' in v ? v.events : [v];
}

/** An XState `inspect` callback that publishes transitions in batches, and a flush for shutdown. */
export function transitionPublisher(options: PublisherOptions) {
  const js: JetStreamClient = jetstream(
    options.nc,
    jsOptions(options.nc, options.publishTimeoutMs ? { timeout: options.publishTimeoutMs } : {}),
  );
  const subject = options.names.eventBatch(options.node);
  /** Published but not yet acknowledged (or given up), by message id; `acked` settles its send (a resend's ack counts). */
  const unacked = new Map<string, { data: Uint8Array; acked: () => void }>();
  // Until the stream exists (the node bootstraps it), transitions wait here.
  let backlog: Transition[] | null = [];
  const publish = (msgID: string, data: Uint8Array) => js.publish(subject, data, { msgID });
  /** One batch: stored once (its message id is its first and last sequence), retried while a replicated stream elects a leader. */
  const send = async (events: Transition[]): Promise<void[]> => {
    const msgID = `${options.instance}-${events[0]!.seq}-${events[events.length - 1]!.seq}`;
    const data = encode({ events });
    let acked = () => {};
    const resent = new Promise<void>((resolve) => (acked = resolve));
    unacked.set(msgID, { data, acked });
    try {
      for (let left = defaults.eventRetries;; left--) {
        try {
          await Promise.race([publish(msgID, data), resent]);
          break;
        } catch (err) {
          if (left <= 0 || !unacked.has(msgID)) throw err;
          await sleep(defaults.eventRetryDelayMs);
        }
      }
    } catch (err) {
      if (unacked.has(msgID)) options.onError?.(err as Error);
    } finally {
      unacked.delete(msgID);
    }
    return events.map(() => undefined);
  };
  const batcher = new Batcher<Transition, void>(send, { max: defaults.eventBatchMax });
  const pending = new Set<Promise<void>>();
  const queue = (t: Transition) => {
    const p = batcher.add(t);
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  /**
   * After a reconnect: send again every batch not yet acknowledged. Those
   * written to a connection that was already dead are lost, and their retry
   * would wait for a whole publish timeout, which a process killed meanwhile
   * never reaches. The message id makes the duplicates harmless.
   */
  const resend = () => {
    for (const [msgID, m] of unacked) void publish(msgID, m.data).then(() => m.acked(), () => {});
  };

  const { inspect, record } = transitionRecorder({
    node: options.node,
    instance: options.instance,
    pid: options.pid,
    sink: (t) => {
      if (backlog) backlog.push(t);
      else queue(t);
      options.onTransition?.(t);
    },
  });

  /** Call once the events stream exists; publishes what waited. */
  const open = () => {
    const waiting = backlog ?? [];
    backlog = null;
    waiting.forEach(queue);
  };

  /** Wait until every event is acknowledged or given up. */
  const flush = async () => {
    await Promise.all([...pending]);
  };
  return { inspect, record, open, flush, resend };
}

export type TailOptions = {
  /** Only the transitions this accepts (default: every one). */
  filter?: (t: Transition) => boolean;
  /** Start at this time instead of the stream's start. */
  since?: Date;
  /** Keep following new events after the stored ones. */
  follow?: boolean;
  signal?: AbortSignal;
};

export type StoredTransition = Transition & { streamSeq: number };

/** The stored history (from its start, or `since`), then, with `follow`, every new transition as it lands. */
export async function* tailTransitions(nc: NatsConnection, n: Names, options: TailOptions = {}): AsyncGenerator<StoredTransition> {
  const consumer = await jetstream(nc, jsOptions(nc)).consumers.get(n.eventsStream, {
    ...(options.since
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: options.since.toISOString() }
      : { deliver_policy: DeliverPolicy.All }),
  });
  if (!options.follow && (await consumer.info()).num_pending === 0) return;
  const iter = await consumer.consume();
  const stop = () => void iter.stop();
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    for await (const m of iter) {
      let ts: Transition[] = [];
      try {
        ts = transitionsOf(m.data);
      } catch {
        // a malformed event is skipped, not fatal to a reader
      }
      for (const t of ts) if (!options.filter || options.filter(t)) yield { ...t, streamSeq: m.seq };
      if (!options.follow && m.info.pending === 0) break;
    }
  } finally {
    options.signal?.removeEventListener('abort', stop);
    await iter.close();
  }
}

/** Read the stored history (optionally filtered) from its start. */
export async function readTransitions(nc: NatsConnection, n: Names, opts: Pick<TailOptions, 'filter'> = {}): Promise<StoredTransition[]> {
  const out: StoredTransition[] = [];
  for await (const t of tailTransitions(nc, n, opts)) out.push(t);
  return out;
}
