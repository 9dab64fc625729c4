// `--placement pull` over JetStream: a work-queue stream the leader publishes
// queued jobs to (one message per job attempt, deduplicated by id), and a
// shared pull consumer that nodes with free slots fetch from. A message is
// acked once the node's assignment write (CAS on the queued record) has been
// decided; a node that dies holding one lets it be redelivered after ack_wait.
import { AckPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { defaults } from '../base/defaults.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { decode, encode } from '../store/codec.ts';
import type { Names } from './subjects.ts';
import { sleep } from '../base/time.ts';
import { jsOptions } from './connect.ts';

const workItemSchema = z.object({ id: z.string(), attempt: z.number() });
export type WorkItem = z.infer<typeof workItemSchema>;

const nanos = (ms: number) => ms * 1_000_000;

/** Put job attempts on the work queue; the message id makes each land once, whoever leads when it is published. */
export async function enqueueWork(nc: NatsConnection, n: Names, jobs: WorkItem[]): Promise<void> {
  const js = jetstream(nc, jsOptions(nc));
  await Promise.all(jobs.map((j) => js.publish(n.work, encode(j satisfies WorkItem), { msgID: `${j.id}:${j.attempt}` })));
}

/** Create the work queue and its consumer if missing (every pull node does; the first wins). */
export async function ensureWorkQueue(nc: NatsConnection, n: Names, replicas: number): Promise<void> {
  const jsm = await jetstreamManager(nc, jsOptions(nc));
  await jsm.streams.add({
    name: n.workStream,
    subjects: [n.work],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: replicas,
    duplicate_window: nanos(120_000),
    // Bounded: a full queue refuses new items (the leader says so and tries again); an item is one job attempt.
    max_msgs: defaults.workQueueMaxMsgs,
    max_bytes: defaults.workQueueMaxBytes,
    discard: DiscardPolicy.New,
  }).catch(async (err) => {
    if (!(await jsm.streams.info(n.workStream).then(() => true, () => false))) throw err;
  });
  await jsm.consumers.add(n.workStream, {
    durable_name: n.workConsumer,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(10_000),
    max_ack_pending: 10_000,
    // An item naked this often (its job's requirements fit no puller for long) stops circulating.
    max_deliver: defaults.workQueueMaxDeliver,
  }).catch(async (err) => {
    if (!(await jsm.consumers.info(n.workStream, n.workConsumer).then(() => true, () => false))) throw err;
  });
}

/**
 * Once `ensure()` has made the queue (retried until it can), fetch work while `free()` says there are slots (checked every 20 ms when
 * full: a baseline, not a fast path) and hand each item to `take`; ack when
 * it resolves, nak (redelivered soon) when it throws. Returns the stop.
 */
export function pullWork(
  nc: NatsConnection,
  n: Names,
  options: { ensure: () => Promise<void>; free: () => number; take: (job: WorkItem) => Promise<void>; log: (msg: string) => void },
): () => void {
  let stopped = false;
  /** The queue and its consumer, made (or found) again until they are there. */
  const consumerOf = async () => {
    for (let delay: number = defaults.retryFirstMs;; delay = Math.min(defaults.retryMaxMs, 2 * delay)) {
      try {
        await options.ensure();
        return await jetstream(nc, jsOptions(nc)).consumers.get(n.workStream, n.workConsumer);
      } catch (err) {
        if (stopped) return null;
        options.log(`work queue not ready (${(err as Error).message}); trying again in ${delay} ms`);
        await sleep(delay);
      }
    }
  };
  void (async () => {
    let consumer = await consumerOf();
    let failures = 0;
    while (!stopped && consumer) {
      const k = options.free();
      if (k <= 0) {
        await sleep(20);
        continue;
      }
      try {
        for await (const m of await consumer.fetch({ max_messages: k, expires: 1_000 })) {
          let job: WorkItem;
          try {
            job = decode(workItemSchema, m.data, 'work item');
          } catch (err) {
            options.log(`dropping a malformed work item: ${(err as Error).message}`);
            m.term();
            continue;
          }
          await options.take(job).then(() => m.ack(), (err: Error & { retryInMs?: number }) => {
            options.log(`work item ${job.id}#${job.attempt}: ${err.message}; back on the queue`);
            m.nak(err.retryInMs ?? 500);
          });
        }
        failures = 0;
      } catch (err) {
        if (!stopped) options.log(`work queue fetch failed: ${(err as Error).message}`);
        await sleep(250);
        // The consumer (or its stream) may be gone: an operator deleted it, a cluster lost it. Make it again.
        if (++failures >= 3) {
          failures = 0;
          consumer = await consumerOf();
        }
      }
    }
  })().catch((err: Error) => options.log(`work queue: ${err.message}`));
  return () => {
    stopped = true;
  };
}
