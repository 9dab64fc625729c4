// Prometheus metrics scraped from a running cluster, as a user's Prometheus
// would: `shoal up --metrics-port P` gives node nK port P + K - 1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import '../helpers.ts';
import { freePort } from '../../harness/launcher.ts';
import { type LocalCluster, startLocalCluster, waitForReady } from '../../harness/local.cluster.ts';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { serveMetrics } from '../../node/metrics.ts';
import { Registry } from 'prom-client';
import type { AddressInfo } from 'node:net';

const n = names();

/** `name{labels} value` lines → sum of values per metric name with the given label text (if any). */
function value(text: string, name: string, labels = ''): number {
  return text.split('\n').filter((l) => l.startsWith(name) && (labels === '' || l.includes(labels)) && /^[a-z_]+(\{[^}]*\})? /.test(l))
    .filter((l) => l.slice(0, l.search(/[{ ]/)) === name)
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('metrics', () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  let base: number;
  before(async () => {
    // Two consecutive free ports (the second may be taken meanwhile; a clash fails the node with a clear error).
    base = await freePort();
    c = await startLocalCluster({ nodes: 2, cluster: 1, port: 0, leaseTtlMs: 1000, metricsPort: base });
    nc = await connect({ servers: c.urls });
    await waitForReady(c.urls, 2);
  });
  after(async () => {
    await nc?.close();
    await c?.stop();
  });

  test('every node serves its metrics; jobs, latency, auctions, leases, checkpoints and the process are counted', async () => {
    await callApi(nc, n, 'jobs.submit', { type: 'primes', id: 'm1', input: { limit: 50_000, chunk: 10_000 } });
    const done = await callApi(nc, n, 'jobs.wait', { id: 'm1', timeoutMs: 20_000 }, 25_000);
    assert.equal(done.state, 'succeeded');
    const scrape = async (port: number) => {
      const r = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /text\/plain/);
      return r.text();
    };
    const texts = await Promise.all([scrape(base), scrape(base + 1)]);
    const total = (name: string, labels = '') => texts.reduce((s, t) => s + value(t, name, labels), 0);
    for (const t of texts) {
      for (
        const name of [
          'shoal_jobs',
          'shoal_lease_renewals_total',
          'shoal_leader',
          'shoal_inspect_events_dropped_total',
          'shoal_process_cpu_user_seconds_total',
          'shoal_nodejs_eventloop_lag_seconds',
        ]
      ) {
        assert.match(t, new RegExp(`^${name}`, 'm'), `${name} is exposed`);
      }
      assert.match(t, /node="n[12]"/);
    }
    assert.equal(total('shoal_leader'), 1, 'exactly one node leads');
    assert.equal(total('shoal_job_start_seconds_count'), 1, 'one attempt started');
    assert.equal(total('shoal_jobs_finished_total', 'state="succeeded"'), 1);
    assert.ok(total('shoal_job_seconds_count') >= 1);
    assert.ok(total('shoal_checkpoint_bytes_count') >= 5, 'primes checkpoints every chunk');
    assert.ok(total('shoal_auction_seconds_count') >= 1);
    assert.ok(total('shoal_auction_jobs_assigned_total') >= 1);
    assert.ok(total('shoal_leader_terms_total') >= 1);
    assert.ok(total('shoal_lease_renewals_total') >= 1);
    assert.equal((await fetch(`http://127.0.0.1:${base}/other`)).status, 404);
  });

  test('/healthz and /readyz: 200 with the state while a member; /readyz 503 while it takes no work', async () => {
    for (const port of [base, base + 1]) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { state: 'ready', live: true, ready: true });
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    }
    // The same server with a node that is reconnecting (the states come from the node machine).
    const server = await serveMetrics(new Registry(), 0, '127.0.0.1', () => ({ state: 'reconnecting', live: true, ready: false }));
    const port = (server.address() as AddressInfo).port;
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(r.status, 503);
      assert.equal(((await r.json()) as { state: string }).state, 'reconnecting');
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    } finally {
      server.close();
    }
  });
});
