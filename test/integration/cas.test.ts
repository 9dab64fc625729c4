// Why Shoal needs nats-server 2.10+: a direct CAS probe on a 3-server cluster.
// On 2.10+ exactly one of two racing updates with the same revision wins.
// (What 2.9.10 does, both to the probe and to Shoal's jobs, is in chaos.test.ts.)
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import '../helpers.ts';
import { probeCas } from '../../harness/cas.probe.ts';
import { type NatsCluster, startCluster } from '../../harness/launcher.ts';

const rounds = 100;
let cluster: NatsCluster | null = null;
after(async () => {
  await cluster?.stop();
});

test(`nats-server 2.10+: racing CAS updates with one revision, exactly one wins (${rounds} rounds)`, async () => {
  cluster = await startCluster();
  const r = await probeCas(cluster.urls, rounds);
  assert.equal(r.bothWon, 0, JSON.stringify(r));
  assert.equal(r.oneWon, rounds);
});
