// A direct compare-and-swap probe for a JetStream cluster: two clients on
// different servers update one key with the same expected revision at once;
// a correct server lets exactly one win. nats-server 2.9.10 (Debian
// bookworm) lets both win; Shoal refuses servers older than 2.10 for this.
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { sleep } from '../base/time.ts';

export type ProbeResult = { rounds: number; bothWon: number; oneWon: number; noneWon: number };

export async function probeCas(urls: string[], rounds: number, bucket = `cas_probe_${Date.now()}`): Promise<ProbeResult> {
  const [a, b] = await Promise.all([connect({ servers: urls[0] }), connect({ servers: urls[1] ?? urls[0] })]);
  try {
    // A cluster that just formed may not place a replicated stream yet ("no suitable peers"): retry.
    const kvm = new Kvm(jetstream(a, { timeout: 5_000 }));
    const deadline = Date.now() + 60_000;
    let kvA;
    for (;;) {
      try {
        kvA = await kvm.create(bucket, { replicas: Math.min(3, urls.length), history: 1 });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(250);
      }
    }
    const kvB = await new Kvm(jetstream(b, { timeout: 5_000 })).open(bucket);
    const r: ProbeResult = { rounds, bothWon: 0, oneWon: 0, noneWon: 0 };
    const enc = new TextEncoder();
    for (let i = 0; i < rounds; i++) {
      const rev = await kvA.put('k', enc.encode(`base-${i}`));
      const wins = (await Promise.allSettled([kvA.update('k', enc.encode(`a-${i}`), rev), kvB.update('k', enc.encode(`b-${i}`), rev)]))
        .filter((x) => x.status === 'fulfilled').length;
      if (wins === 2) r.bothWon++;
      else if (wins === 1) r.oneWon++;
      else r.noneWon++;
    }
    await kvA.destroy().catch(() => {});
    return r;
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}
