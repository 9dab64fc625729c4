// NATS's own floor for the overhead scenario: a plain JetStream work queue on
// the same server, publish → a pull consumer has it, and messages/s acked.
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { window } from './common.ts';

/** The same through a plain JetStream work queue: publish → a pull consumer has it (ms), and messages/s with 3 consumers acking. */
export async function workQueue(nc: NatsConnection, count: number, width: number): Promise<{ latency: number[]; perSecond: number }> {
  const jsm = await jetstreamManager(nc);
  const name = `bench_wq_${Date.now()}`;
  await jsm.streams.add({ name, subjects: [`${name}.>`], retention: RetentionPolicy.Workqueue });
  await jsm.consumers.add(name, { durable_name: 'w', ack_policy: AckPolicy.Explicit });
  const js = jetstream(nc);
  const sent = new Map<number, { at: number; got: () => void }>();
  const latency: number[] = [];
  const consumers = await Promise.all([0, 1, 2].map(async () => await (await js.consumers.get(name, 'w')).consume({ max_messages: 256 })));
  for (const msgs of consumers) {
    void (async () => {
      for await (const m of msgs) {
        m.ack();
        const k = Number(m.string());
        const s = sent.get(k);
        if (s) latency.push(performance.now() - s.at), s.got();
      }
    })();
  }
  const run = async (k0: number, k: number, w: number, measure: boolean) => {
    await window(k, w, async (i) => {
      const key = k0 + i;
      const got = new Promise<void>((resolve) => sent.set(key, { at: performance.now(), got: resolve }));
      await js.publish(`${name}.job`, new TextEncoder().encode(String(key)));
      await got;
      if (!measure) latency.pop();
    });
  };
  await run(0, Math.min(count, 500), 4, true);
  const began = performance.now();
  await run(1e7, count, width, false);
  const perSecond = count / ((performance.now() - began) / 1000);
  consumers.forEach((c) => c.stop());
  await jsm.streams.delete(name);
  return { latency, perSecond };
}
