// Placement messages over core NATS (the fast path; KV is the truth): the
// leader's side (offer, collect bids, notify winners, hear "jobs queued"), the
// API's (jobs queued, cancel, drain) and the node's (answer offers, take
// assignments and cancels).
// The simulation implements the same two shapes over its own network.
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { decode, encode } from '../store/codec.ts';
import type { z } from 'zod';
import {
  type AssignAck,
  assignAckSchema,
  type Assignment,
  assignmentSchema,
  type Bid,
  bidSchema,
  jobIdsSchema,
  type Offer,
  offerSchema,
} from './messages.ts';
import { defaults } from '../base/defaults.ts';
import type { JobRecord } from '../api/contract.ts';
import type { Versioned } from '../store/job.store.ts';
import type { Names } from './subjects.ts';
import { enqueueWork, type WorkItem } from './work.queue.ts';
import type { ReplyGuard } from './reply.ts';

/** What the leader's placement loop sends and hears. */
export type PlacementTransport = {
  /** Offer jobs to every node; resolve with the bids: at most `expect` replies (0: unknown), within `maxWaitMs`. */
  auction(offer: Offer, expect: number, maxWaitMs: number): Promise<Bid[]>;
  /** Tell a node which jobs it won, as written (record and revision), and which of its running jobs yield to them. */
  assign(node: string, jobs: Array<Versioned<JobRecord>>, preempt?: Pick<Assignment, 'preempt' | 'graceMs'>): void;
  /** Call `fn` whenever jobs were queued; returns the unsubscribe. */
  onQueued(fn: () => void): () => void;
  /** `--placement pull`: put queued jobs on the work queue (once per job and attempt); not in the simulation. */
  enqueue?(jobs: WorkItem[]): Promise<void>;
  /**
   * `dispatch`: send a node its assignments (all named in its lease term `epoch`) and wait for its
   * acknowledgement; null when it did not answer in time (the dispatcher sends them again).
   */
  deliver?(node: string, batch: { jobs: Array<Versioned<JobRecord>>; epoch: number | null }): Promise<AssignAck | null>;
  /** `dispatch`: tell a node to stop these cancelled jobs and wait for its acknowledgement (false: none in time). */
  stop?(node: string, ids: string[]): Promise<boolean>;
};

/** What the API tells the rest of the cluster (the endpoints' side of these messages). */
export type Notify = {
  /** Jobs were queued: wake the leader's placement. */
  queued(): void;
  /** Ask a node to stop running these jobs. */
  cancel(node: string, ids: string[]): void;
};

/** What a node does with the messages addressed to it. */
export type NodeInbox = {
  /** A bid for an offer, or null to stay silent (not ready); a promise where the scorer is async (ONNX). */
  offer(offer: Offer): Bid | null | Promise<Bid | null>;
  /** Take assignments; with `epoch` (the lease term they name), answer which it took and which it refused. */
  assign(jobs: Array<Versioned<JobRecord>>, preempt?: Pick<Assignment, 'preempt' | 'graceMs'>, epoch?: number | null): AssignAck;
  cancel(ids: string[]): void;
};

/**
 * `jobs` in groups whose message (`message` encodes one) stays below `maxBytes`, halving a batch until it
 * fits: four jobs with 256 KiB inputs must not make one message the server refuses and is sent forever. A
 * job that does not fit alone goes alone (a record is smaller than the server's limit).
 */
export function splitBelow<T>(jobs: T[], message: (jobs: T[]) => Uint8Array, maxBytes: number): T[][] {
  if (jobs.length <= 1 || message(jobs).length <= maxBytes) return [jobs];
  const half = Math.ceil(jobs.length / 2);
  return [...splitBelow(jobs.slice(0, half), message, maxBytes), ...splitBelow(jobs.slice(half), message, maxBytes)];
}

export function natsPlacement(nc: NatsConnection, n: Names): PlacementTransport {
  // Headroom below the server's max_payload for the subject, reply and headers.
  const maxBytes = () => (nc.info?.max_payload ?? 1024 * 1024) - defaults.messageHeadroomBytes;
  return {
    async auction(offer, expect, maxWaitMs) {
      const bids: Bid[] = [];
      // Stop as soon as every ready node has answered; the window bounds the wait for the slow ones.
      const replies = await nc.requestMany(
        n.auction,
        encode(offer),
        expect > 0 ? { strategy: 'count', maxMessages: expect, maxWait: maxWaitMs } : { strategy: 'timer', maxWait: maxWaitMs },
      );
      for await (const m of replies) {
        try {
          bids.push(decode(bidSchema, m.data, 'bid'));
        } catch {
          // a malformed bid is ignored
        }
      }
      return bids;
    },
    assign(node, jobs, preempt) {
      // A preemption (one job taking its victims' slots) goes whole with the first message.
      splitBelow(jobs, (js) => encode({ jobs: js, ...preempt }), maxBytes()).forEach((group, i) => {
        nc.publish(n.nodeAssign(node), encode({ jobs: group, ...(i === 0 ? preempt : {}) }));
      });
    },
    onQueued(fn) {
      const sub = nc.subscribe(n.jobsQueued, { callback: () => fn() });
      return () => sub.unsubscribe();
    },
    enqueue: (jobs) => enqueueWork(nc, n, jobs),
    async deliver(node, { jobs, epoch }) {
      const groups = splitBelow(jobs, (js) => encode({ jobs: js, epoch }), maxBytes());
      const acks = await Promise.all(groups.map(async (group) => {
        try {
          const reply = await nc.request(n.nodeAssign(node), encode({ jobs: group, epoch }), { timeout: defaults.assignAckTimeoutMs });
          return decode(assignAckSchema, reply.data, 'assignment ack');
        } catch {
          return null; // no answer (or no such node now): sent again when due
        }
      }));
      const answered = acks.filter((a): a is AssignAck => a !== null);
      if (answered.length === 0) return null;
      return { accepted: answered.flatMap((a) => a.accepted), refused: answered.flatMap((a) => a.refused) };
    },
    async stop(node, ids) {
      try {
        await nc.request(n.nodeCancel(node), encode({ ids }), { timeout: defaults.assignAckTimeoutMs });
        return true;
      } catch {
        return false; // sent again when due
      }
    },
  };
}

export function natsNotify(nc: NatsConnection, n: Names): Notify {
  return {
    queued: () => nc.publish(n.jobsQueued),
    cancel: (node, ids) => nc.publish(n.nodeCancel(node), encode({ ids })),
  };
}

/** Subscribe a node's inbox: offers on the auction subject, its own assignments and cancels. */
export function serveInbox(
  nc: NatsConnection,
  n: Names,
  options: { nodeId: string; inbox: NodeInbox; log: (msg: string) => void; guard: ReplyGuard },
): Subscription[] {
  const { nodeId, inbox, log, guard } = options;
  return [
    nc.subscribe(n.auction, {
      callback: (_err, msg) => {
        if (!guard.allows(msg.reply, 'auction')) return;
        let offer;
        try {
          offer = decode(offerSchema, msg.data, 'offer');
        } catch {
          return;
        }
        const answer = (bid: Bid | null) => bid && msg.respond(encode(bid));
        const bid = inbox.offer(offer);
        if (bid instanceof Promise) bid.then(answer, (err: Error) => log(`could not bid: ${err.message}`));
        else answer(bid);
      },
    }),
    // A published assignment (auction, centralized) is taken as it is; a request (dispatch) is acknowledged.
    nc.subscribe(n.nodeAssign(nodeId), {
      callback: (_err, msg) => {
        let m: Assignment;
        try {
          m = decode(assignmentSchema, msg.data, 'assignment');
        } catch (err) {
          return log(`bad assignment message: ${(err as Error).message}`);
        }
        const ack = inbox.assign(m.jobs as Array<Versioned<JobRecord>>, m, m.epoch);
        if (msg.reply && guard.allows(msg.reply, 'assignment')) msg.respond(encode(ack));
      },
    }),
    // A cancel: published by the API, or requested (and acknowledged) by the dispatcher until it is heard.
    onMessage(n.nodeCancel(nodeId), jobIdsSchema, 'cancel', (m, msg) => {
      inbox.cancel(m.ids);
      if (msg.reply && guard.allows(msg.reply, 'cancel')) msg.respond();
    }),
  ];

  /** A subject carrying one kind of message: a malformed one is logged and dropped. */
  function onMessage<S extends z.ZodType>(
    subject: string,
    schema: S,
    what: string,
    act: (m: z.infer<S>, msg: Msg) => void,
  ): Subscription {
    return nc.subscribe(subject, {
      callback: (_err, msg) => {
        try {
          act(decode(schema, msg.data, what), msg);
        } catch (err) {
          log(`bad ${what} message: ${(err as Error).message}`);
        }
      },
    });
  }
}
