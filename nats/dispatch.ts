// Talking to the dispatcher (the leader, in `dispatch` placement): API nodes
// forward validated submits to it in batches (group commit). Only the
// dispatcher serves the intake subject, so "no responders" means there is none
// right now (a failover) and the caller tries again. Transport-free types
// first; the NATS implementation below; the simulation has its own
// (chaos/sim/net.messages.ts). Waits and status are served by the dispatcher
// on the public API's own subjects (node/leader/dispatcher.ts).
import type { NatsConnection } from '@nats-io/transport-node';
import { Batcher } from '../base/batcher.ts';
import { defaults } from '../base/defaults.ts';
import { ApiError } from '../base/errors.ts';
import { type Clock, realClock, sleep } from '../base/time.ts';
import { decode, encode } from '../store/codec.ts';
import { type IntakeItem, intakeReplySchema, type IntakeResult, intakeSchema } from './messages.ts';
import { isNoResponders } from './probe.ts';
import type { ReplyGuard } from './reply.ts';
import type { Names } from './subjects.ts';

/** What the dispatcher does with a batch of submits: one result per item, in order. */
export type Intake = (items: IntakeItem[]) => Promise<IntakeResult[]>;

/** How a batch reaches the dispatcher; throws `NoDispatcher` when none serves the subject now. */
export type IntakeWire = {
  send(items: IntakeItem[], timeoutMs: number): Promise<IntakeResult[]>;
  /** Serve the intake subject (while dispatching) until the returned stop is called. */
  serve(intake: Intake): () => void;
};

/** Nobody serves the dispatcher's subjects now (no leader, or a failover in progress). */
export class NoDispatcher extends Error {
  readonly code = 'NO_DISPATCHER';
  constructor(options?: ErrorOptions) {
    super('no dispatcher answers now (no leader yet, or a failover in progress)', options);
    this.name = 'NoDispatcher';
  }
}

/**
 * API nodes' side: submits go out batched (at once when no batch is in flight, else with the next); the
 * node's own dispatcher is called directly. While no dispatcher answers (a failover), or a batch got no
 * answer in time (it may have landed: sending it again is safe, a submit is idempotent by its job id), it
 * is tried again until `defaults.apiTimeoutMs` has passed, then its submits fail as 503 (the client retries).
 */
export function intakeClient(wire: IntakeWire, options: { local: () => Intake | null; clock?: Clock }) {
  const clock = options.clock ?? realClock;
  const send = async (items: IntakeItem[]): Promise<IntakeResult[]> => {
    const deadline = clock.mono() + defaults.apiTimeoutMs;
    for (let delay: number = defaults.dispatchRetryMs;; delay = Math.min(defaults.retryMaxMs, delay * 2)) {
      try {
        const local = options.local();
        const attemptMs = Math.max(1, Math.min(defaults.apiAttemptMs, deadline - clock.mono()));
        return local ? await local(items) : await wire.send(items, attemptMs);
      } catch (err) {
        if (err instanceof ApiError) throw err;
        if (clock.mono() + delay >= deadline) {
          throw new ApiError(503, 'starting', `no dispatcher took the submit: ${(err as Error).message}`, { cause: err });
        }
        await sleep(delay, undefined, clock);
      }
    }
  };
  const batcher = new Batcher<IntakeItem, IntakeResult>(send, { max: defaults.intakeBatchMax });
  return (item: IntakeItem) => batcher.add(item);
}

/** The intake subject over NATS (CBOR); replies only to inboxes. */
export function natsIntakeWire(nc: NatsConnection, n: Names, guard: ReplyGuard, log: (msg: string) => void): IntakeWire {
  return {
    async send(items, timeoutMs) {
      try {
        const reply = await nc.request(n.dispatchIntake, encode({ jobs: items }), { timeout: timeoutMs });
        return decode(intakeReplySchema, reply.data, 'intake reply').results;
      } catch (err) {
        if (isNoResponders(err)) throw new NoDispatcher({ cause: err });
        throw err;
      }
    },
    serve(intake) {
      const sub = nc.subscribe(n.dispatchIntake, {
        callback: (_err, msg) => {
          if (!guard.allows(msg.reply, 'intake')) return;
          let jobs: IntakeItem[];
          try {
            jobs = decode(intakeSchema, msg.data, 'intake').jobs;
          } catch (err) {
            return log(`bad intake request: ${(err as Error).message}`);
          }
          intake(jobs).then((results) => msg.respond(encode({ results })), (err: Error) => log(`intake failed: ${err.message}`));
        },
      });
      return () => sub.unsubscribe();
    },
  };
}
