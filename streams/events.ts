// Every transition of every machine, published as CBOR on
// `<prefix>.evt.<kind>.<actor>` and kept in the events stream: the history
// that tests, benchmarks and the chaos checker read.
import { DeliverPolicy, jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { InspectionEvent, StateValue } from 'xstate';
import { z } from 'zod';
import { decode, encode } from './codec.ts';
import { defaults } from './defaults.ts';
import type { Names } from './subjects.ts';
import { sleep } from './time.ts';

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

export function stateString(value: StateValue): string {
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([k, v]) => (v === undefined || (typeof v === 'object' && Object.keys(v).length === 0) ? k : `${k}.${stateString(v as StateValue)}`))
    .join(',');
}

type MachineLikeSnapshot = {
  value: StateValue;
  status: string;
  context: Record<string, unknown>;
  machine: { id: string };
};

function isMachineSnapshot(s: unknown): s is MachineLikeSnapshot {
  return typeof s === 'object' && s !== null && 'machine' in s && 'value' in s;
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
};

/** Actor id for the event subject: the node id, plus the lease's key kind. */
function actorId(node: string, snap: MachineLikeSnapshot): string {
  if (snap.machine.id === 'lease') {
    const key = String(snap.context.key ?? 'lease');
    return `${node}-${key.split('.')[0]}`;
  }
  return node;
}

/** An XState `inspect` callback that publishes transitions, and a flush for shutdown. */
export function transitionPublisher(o: PublisherOptions) {
  const js: JetStreamClient = jetstream(o.nc);
  const last = new Map<string, string>();
  const pending = new Set<Promise<unknown>>();
  // Until the stream exists (the node bootstraps it), transitions wait here.
  let backlog: Transition[] | null = [];
  let seq = 0;
  const send = (t: Transition) => {
    const subject = o.names.event(t.kind, t.actor);
    const data = encode(t);
    // A replicated stream can be between leaders for seconds: retry, and keep
    // `seq` so readers can restore one process's order.
    const attempt = async (left: number): Promise<unknown> => {
      try {
        return await js.publish(subject, data, { msgID: `${t.instance}-${t.seq}` });
      } catch (err) {
        if (left <= 0) throw err;
        await sleep(defaults.eventRetryDelayMs);
        return attempt(left - 1);
      }
    };
    const p = attempt(defaults.eventRetries).catch((err: Error) => o.onError?.(err));
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  const inspect = (ev: InspectionEvent) => {
    if (ev.type !== '@xstate.snapshot' || !isMachineSnapshot(ev.snapshot)) return;
    const snap = ev.snapshot;
    const session = ev.actorRef.sessionId;
    const to = stateString(snap.value);
    const from = last.get(session) ?? null;
    if (from === to) return;
    last.set(session, to);
    const epoch = typeof snap.context.epoch === 'number' ? snap.context.epoch : null;
    record({ kind: snap.machine.id, actor: actorId(o.node, snap), from, to, event: ev.event.type, epoch });
  };

  /** Publish one transition of something that is not a live actor here (a job record written by CAS). */
  const record = (f: Pick<Transition, 'kind' | 'actor' | 'from' | 'to' | 'event' | 'epoch' | 'data'>) => {
    const t: Transition = { ...f, node: o.node, instance: o.instance, pid: o.pid, wall: Date.now(), mono: performance.now(), seq: ++seq };
    if (backlog) backlog.push(t);
    else send(t);
    o.onTransition?.(t);
  };

  /** Call once the events stream exists; publishes what waited. */
  const open = () => {
    const waiting = backlog ?? [];
    backlog = null;
    waiting.forEach(send);
  };

  const flush = async () => {
    await Promise.allSettled([...pending]);
  };
  return { inspect, record, open, flush };
}

/** Read the stored history (optionally one subject filter) from its start. */
export async function readTransitions(nc: NatsConnection, n: Names, opts: { subject?: string } = {}): Promise<Array<Transition & { streamSeq: number }>> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(n.eventsStream, {
    filter_subjects: opts.subject ? [opts.subject] : undefined,
    deliver_policy: DeliverPolicy.All,
  });
  const out: Array<Transition & { streamSeq: number }> = [];
  if ((await consumer.info()).num_pending === 0) return out;
  const iter = await consumer.consume();
  for await (const m of iter) {
    out.push({ ...decode(transitionSchema, m.data, 'transition event'), streamSeq: m.seq });
    if (m.info.pending === 0) break;
  }
  await iter.close();
  return out;
}
