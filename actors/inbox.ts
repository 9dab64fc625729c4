// A node's side of placement: a bid for each offered job it can run (scored by
// the policy), assigned jobs handed to the runner, cancelled ones stopped.
// Transport-free: a real node wires it to NATS (streams/placement.ts), the
// simulation to its network.
import { heuristicScorer, type Scorer } from '../policies/scorer.ts';
import type { Bid, Offer } from '../streams/messages.ts';
import type { NodeInbox } from '../streams/placement.ts';
import type { Clock } from '../streams/time.ts';

/** Wins older than this no longer count against a node's next bids. */
export const recentWinsMs = 5_000;

export type InboxDeps = {
  nodeId: string;
  slots: number;
  /** Job types this node handles. */
  handles: (type: string) => boolean;
  /** Only a ready node bids. */
  ready: () => boolean;
  runner: () => { readonly free: number; readonly running: number; start(id: string): Promise<void>; stop(id: string, reason: 'cancelled'): void } | null;
  clock: Clock;
  scorer?: Scorer;
};

/** This node's bid for an offer: one score per job it can take while it has free slots. */
export function bidFor(offer: Offer, o: { nodeId: string; slots: number; free: number; running: number; recentWins: number; handles: (type: string) => boolean; scorer?: Scorer }): Bid {
  const scorer = o.scorer ?? heuristicScorer;
  return {
    node: o.nodeId,
    free: o.free,
    bids: offer.jobs.filter((j) => o.free > 0 && o.handles(j.type)).map((j) => ({
      id: j.id,
      score: scorer.score({ slots: o.slots, freeSlots: o.free, running: o.running, holdsCheckpoint: j.lastNode === o.nodeId, recentWins: o.recentWins, priority: j.priority }),
    })),
  };
}

export function nodeInbox(d: InboxDeps): NodeInbox {
  const wins: number[] = [];
  return {
    // Every ready node answers (maybe with no bids), so the leader can stop waiting once all have.
    offer(offer) {
      const runner = d.runner();
      if (!runner || !d.ready()) return null;
      const now = d.clock.now();
      while (wins.length && now - wins[0]! > recentWinsMs) wins.shift();
      return bidFor(offer, { nodeId: d.nodeId, slots: d.slots, free: runner.free, running: runner.running, recentWins: wins.length, handles: d.handles, scorer: d.scorer });
    },
    assign(ids) {
      for (const id of ids) {
        wins.push(d.clock.now());
        void d.runner()?.start(id);
      }
    },
    cancel(ids) {
      for (const id of ids) d.runner()?.stop(id, 'cancelled');
    },
  };
}
