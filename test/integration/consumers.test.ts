// Waits, lists and status calls leave no consumer behind on the server, on
// each nats-server version Shoal supports: the one setup installs (2.10) and
// the newest Debian packages (setup --with-new-nats; 2.15 caps consumers per
// stream at 1,000, so a leak there turns into 500s after a thousand waits).
import { until, withCluster } from '../helpers.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { cachedNewestNatsServer } from '../../harness/launcher.ts';
import { callApi } from '../../nats/client.ts';
import type { ApiError } from '../../base/errors.ts';
import { names } from '../../nats/subjects.ts';

const n = names();
const newest = process.env.NATS_SERVER_BIN_NEW ?? cachedNewestNatsServer;
const servers: Array<{ label: string; bin?: string; skip: string | false }> = [
  { label: 'the nats-server setup found', skip: false },
  {
    label: 'the newest nats-server (Debian sid)',
    bin: newest,
    skip: !existsSync(newest) && 'no newest binary (setup --with-new-nats, or NATS_SERVER_BIN_NEW)',
  },
];

for (const server of servers) {
  describe(`consumers on ${server.label}: 2 node processes`, { skip: server.skip }, () => {
    let nc: NatsConnection;

    withCluster({ nodes: 2, serverBin: server.bin }, (fx) => ({ nc } = fx));

    test("thousands of waits, lists and status calls leave the server's consumer count flat", async () => {
      const jsm = await jetstreamManager(nc);
      const consumers = async () => (await jsm.streams.info(`KV_${n.jobsBucket}`)).state.consumer_count;
      await callApi(nc, n, 'jobs.submit', { type: 'noop', id: 'flat-done' });
      await callApi(nc, n, 'jobs.wait', { id: 'flat-done', timeoutMs: 10_000 });
      await callApi(nc, n, 'jobs.submit', { type: 'sleep', id: 'flat-long', input: { ms: 600_000 } });
      // The job records are watched by the dispatcher and its standby only: one consumer each, once the standby is named.
      const before = await until(
        'the dispatcher and its standby watch the records',
        async () => ((await consumers()) === 2 ? 2 : null),
        10_000,
      );
      const batch = async (count: number, call: (i: number) => Promise<unknown>) => {
        for (let i = 0; i < count; i += 100) await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, k) => call(i + k)));
      };
      await batch(1000, () => callApi(nc, n, 'jobs.wait', { id: 'flat-done' }));
      // Waits that time out (408) and waits for an unknown id (404) end as cleanly.
      const codes = new Set<number>();
      await batch(200, (i) =>
        callApi(nc, n, 'jobs.wait', i % 2 ? { id: 'flat-long', timeoutMs: 20 } : { id: `flat-none-${i}` }).then(
          () => assert.fail('no wait should succeed'),
          (err: ApiError) => codes.add(err.status),
        ));
      assert.deepEqual([...codes].sort(), [404, 408]);
      await batch(200, (i) => callApi(nc, n, i % 2 ? 'jobs.list' : 'status', {}));
      assert.equal(await consumers(), before);
      await callApi(nc, n, 'jobs.cancel', { id: 'flat-long' });
    });
  });
}
