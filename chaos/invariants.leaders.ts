// The leadership invariants: one leader per epoch, epochs that only grow, no
// stale leader acting after a newer one began, and a leader soon after the
// faults stop. Leadership is an optimisation (docs/design.md), but these show the
// fencing of leaders works.
import { isLeaderAction, type Transition } from '../nats/events.ts';
import type { Violation } from './history.ts';
import { byTime, type CheckOptions, type History } from './history.ts';

/** Who led under which epoch: every leading transition, by epoch, and each epoch's first, in time order. */
function terms(h: History) {
  const leading = h.all.filter((t) => t.kind === 'coordinator' && t.to.startsWith('active.leader') && t.epoch !== null).sort(byTime);
  const byEpoch = new Map<number, Transition[]>();
  for (const t of leading) byEpoch.set(t.epoch!, [...(byEpoch.get(t.epoch!) ?? []), t]);
  const firstActs = [...byEpoch.entries()].map(([epoch, evs]) => ({ epoch, first: evs[0]! })).sort((a, b) => byTime(a.first, b.first));
  return { leading, byEpoch, firstActs };
}

export function oneLeaderPerEpoch(h: History): Violation[] {
  return [...terms(h).byEpoch].flatMap(([epoch, evs]) => {
    const who = new Set(evs.map((t) => t.instance));
    if (who.size <= 1) return [];
    return [{
      invariant: 'one-leader-per-epoch',
      subject: `epoch ${epoch}`,
      message: `${who.size} processes acted as leader under epoch ${epoch}: ${[...new Set(evs.map((t) => t.node))].join(', ')}`,
      events: evs,
    }];
  });
}

export function epochsIncrease(h: History): Violation[] {
  const { firstActs } = terms(h);
  return firstActs.slice(1).flatMap((cur, i) => {
    const prev = firstActs[i]!;
    if (cur.epoch >= prev.epoch) return [];
    return [{
      invariant: 'epochs-increase',
      subject: `epoch ${cur.epoch}`,
      message: `epoch ${cur.epoch} started acting after epoch ${prev.epoch}`,
      events: [prev.first, cur.first],
    }];
  });
}

export function staleLeaderActed(h: History): Violation[] {
  const { leading, firstActs } = terms(h);
  return leading.filter(isLeaderAction).flatMap((t) => {
    const newer = firstActs.find((f) => f.epoch > t.epoch! && f.first.wall < t.wall);
    if (!newer) return [];
    return [{
      invariant: 'stale-leader-acted',
      subject: `epoch ${t.epoch}`,
      message: `${t.node} acted under epoch ${t.epoch} after epoch ${newer.epoch} began (${t.wall - newer.first.wall} ms later)`,
      events: [newer.first, t],
    }];
  });
}

/** A leader within `leaderWithinMs` after the faults stopped. */
export function noLeader(h: History, options: CheckOptions): Violation[] {
  if (options.faultsEndedAt === undefined || options.leaderWithinMs === undefined) return [];
  const at = leaderSeenAt(h.all, options.faultsEndedAt);
  if (at !== null && at - options.faultsEndedAt <= options.leaderWithinMs) return [];
  return [{
    invariant: 'no-leader',
    subject: 'leader',
    message: `no leader within ${options.leaderWithinMs} ms after the faults stopped${
      at === null ? '' : ` (first after ${at - options.faultsEndedAt} ms)`
    }`,
    events: h.all.filter((t) => t.kind === 'coordinator').sort(byTime).slice(-4),
  }];
}

/**
 * When a leader was first seen at or after `since`: a coordinator entering (or
 * cycling within) leadership under an epoch, or a leader confirming its lease
 * (acquired or renewed, every TTL/3) while its coordinator leads. A leader busy
 * in a long duty pass still renews; a dead or stopped one does not.
 */
export function leaderSeenAt(history: Transition[], since: number): number | null {
  const leading = new Map<string, boolean>();
  let first: number | null = null;
  for (const t of [...history].sort(byTime)) {
    if (t.kind === 'coordinator') leading.set(t.instance, t.to.startsWith('active.leader') && t.epoch !== null);
    if (t.wall < since || (first !== null && t.wall >= first)) continue;
    const acts = t.kind === 'coordinator' && leading.get(t.instance) === true;
    const confirms = t.kind === 'lease' && t.actor === `${t.node}-leader` && t.to === 'held.confirmed.waiting' &&
      leading.get(t.instance) === true;
    if (acts || confirms) first = t.wall;
  }
  return first;
}
