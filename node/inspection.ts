// A node's live inspection feed: XState's inspection events for its machine
// actors (node, coordinator, leases) in @statelyai/inspect's shapes
// (`@xstate.actor`, `@xstate.snapshot`, `@xstate.event`), through its
// `createInspector(adapter)`, so the same feed can go to Stately's tools.
// Session ids are prefixed with the node id (unique across the cluster);
// each event also says which Shoal actor it is (`shoal`). The feed runs only
// while a viewer has asked for it recently (its sync requests are its
// heartbeat): without one it costs nothing. Snapshots are coalesced (at most
// one per actor per `coalesceMs`), and a full queue drops, never blocks.
import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { defaults } from '../base/defaults.ts';
import { actorId } from '../nats/events.ts';
import type { Clock } from '../base/time.ts';

export type ActorKind = 'node' | 'coordinator' | 'lease';
const kinds: readonly string[] = ['node', 'coordinator', 'lease'];

/** A Stately inspection event, plus which Shoal actor it is about. */
export type ShoalInspectionEvent = StatelyInspectionEvent & { shoal: { node: string; kind: ActorKind; actor: string } };

export type InspectionOptions = {
  nodeId: string;
  clock: Clock;
  /** Sends one batch to viewers; false when it could not (disconnected): the batch counts as dropped. */
  publish: (batch: ShoalInspectionEvent[]) => boolean;
  coalesceMs?: number;
  maxQueue?: number;
  viewerTtlMs?: number;
  onPublished?: (n: number) => void;
  onDropped?: (n: number) => void;
};

type Tracked = { ref: AnyActorRef; kind: ActorKind; actor: string | null };

/** Only what a viewer reads of a snapshot: no actor refs, no machine object. */
function plain(snapshot: unknown): { status?: string; value?: unknown; context?: unknown } {
  const s = snapshot as { status?: string; value?: unknown; context?: unknown };
  return { status: s.status, value: s.value, context: s.context };
}

/**
 * Pending events in order, sent as one batch `coalesceMs` after the first; a
 * snapshot replaces the pending one of its actor; beyond `maxQueue` the oldest
 * are dropped (counted), never blocking the machines.
 */
function coalescingQueue(options: InspectionOptions) {
  const coalesceMs = options.coalesceMs ?? defaults.inspectCoalesceMs;
  const maxQueue = options.maxQueue ?? defaults.inspectMaxQueue;
  let queue: ShoalInspectionEvent[] = [];
  let timer: unknown = null;
  const flush = () => {
    timer = null;
    if (queue.length === 0) return;
    const batch = queue;
    queue = [];
    if (options.publish(batch)) options.onPublished?.(batch.length);
    else options.onDropped?.(batch.length);
  };

  const enqueue = (e: ShoalInspectionEvent) => {
    if (e.type === '@xstate.snapshot') {
      const i = queue.findIndex((x) => x.type === '@xstate.snapshot' && x.sessionId === e.sessionId);
      if (i >= 0) queue.splice(i, 1);
    }
    queue.push(e);
    if (queue.length > maxQueue) {
      const over = queue.length - maxQueue;
      queue.splice(0, over);
      options.onDropped?.(over);
    }
    timer ??= options.clock.setTimeout(flush, coalesceMs);
  };

  return {
    enqueue,
    stop() {
      if (timer !== null) options.clock.clearTimeout(timer);
      queue = [];
    },
  };
}

export function inspectionFeed(options: InspectionOptions) {
  const viewerTtlMs = options.viewerTtlMs ?? defaults.inspectViewerTtlMs;
  const tracked = new Map<string, Tracked>();
  let viewerUntil = -Infinity;
  const active = () => options.clock.mono() < viewerUntil;
  const prefix = (id: string | undefined) => (id === undefined || id === 'anonymous' ? id : `${options.nodeId}:${id}`);

  let capture: ShoalInspectionEvent[] | null = null;

  const tag = (e: StatelyInspectionEvent): ShoalInspectionEvent | null => {
    const t = tracked.get(e.sessionId);
    if (!t) return null;
    const out = { ...e, sessionId: prefix(e.sessionId)!, rootId: prefix(e.rootId) } as ShoalInspectionEvent;
    if ('parentId' in e) (out as { parentId?: string }).parentId = prefix(e.parentId);
    if ('sourceId' in e) (out as { sourceId?: string }).sourceId = prefix(e.sourceId);
    if ('snapshot' in e) (out as { snapshot: unknown }).snapshot = plain(e.snapshot);
    t.actor ??= actorId(options.nodeId, t.ref.getSnapshot() as { machine: { id: string }; context: Record<string, unknown> });
    out.shoal = { node: options.nodeId, kind: t.kind, actor: t.actor };
    return out;
  };

  const queue = coalescingQueue(options);

  const inspector = createInspector({
    send: (ev) => {
      const e = tag(ev);
      if (!e) return;
      if (capture) capture.push(e);
      else if (active()) queue.enqueue(e);
    },
  });

  return {
    /** XState's `inspect` hook: tracks the node's machine actors, forwards their events while a viewer is around. */
    inspect(ev: InspectionEvent) {
      const ref = ev.actorRef as AnyActorRef & { logic?: { config?: { id?: string } } };
      const machineId = ref.logic?.config?.id;
      if (ev.type === '@xstate.actor' && machineId && kinds.includes(machineId)) {
        // Its snapshot (a lease's key, so its actor id) exists only once it has started: named on first use.
        tracked.set(ref.sessionId, { ref, kind: machineId as ActorKind, actor: null });
      }
      if (!tracked.has(ref.sessionId)) return;
      if (ev.type === '@xstate.snapshot' && (ev.snapshot as { status?: string }).status !== 'active') tracked.delete(ref.sessionId);
      if (active()) inspector.inspect.next?.(ev);
    },
    /** A viewer asked: the feed stays on for a while; returns every live actor's current state as `@xstate.actor` events. */
    sync(): ShoalInspectionEvent[] {
      viewerUntil = options.clock.mono() + viewerTtlMs;
      const out: ShoalInspectionEvent[] = [];
      capture = out;
      try {
        for (const t of tracked.values()) {
          const snap = t.ref.getSnapshot() as { status?: string };
          if (snap.status === 'active') inspector.actor(t.ref, plain(snap) as never);
        }
      } finally {
        capture = null;
      }
      return out;
    },
    /** Drop what is pending (the process is stopping). */
    stop: () => queue.stop(),
  };
}
