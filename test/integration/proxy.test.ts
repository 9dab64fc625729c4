// The chaos suite's TCP proxy against a real nats-server: an open link, a crashed link (reset),
// a silent partition (blackhole, down to the server dropping the client), and ordered latency.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { until } from '../helpers.ts';
import { connect, type NatsConnection, NoRespondersError, RequestError } from '@nats-io/transport-node';
import { TcpProxy } from '../../chaos/real/proxy.ts';
import { type NatsServer, startServer } from '../../harness/launcher.ts';
import { sleep } from '../../base/time.ts';

const proxiedOpts = { reconnectTimeWait: 100, maxReconnectAttempts: -1, pingInterval: 500, maxPingOut: 2 };

function isNoResponders(err: unknown): boolean {
  return err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders());
}

describe('chaos TCP proxy', () => {
  let server: NatsServer | undefined;
  let proxy: TcpProxy | undefined;
  let direct: NatsConnection | undefined;
  let nc: NatsConnection | undefined;
  /** The proxied client's status reports, with when they came. */
  const statuses: Array<{ type: string; at: number }> = [];
  const seen = (type: string, since: number): boolean => statuses.some((s) => s.type === type && s.at >= since);

  before(async () => {
    // Not `jetstream: false`: the launcher's readiness check waits for /jsz to report JetStream enabled.
    server = await startServer();
    proxy = await TcpProxy.start({ port: server.port });
    direct = await connect({ servers: server.url });
    direct.subscribe('echo', {
      callback: (_err, m) => {
        m.respond(`echo:${m.string()}`);
      },
    });
    await direct.flush();
    nc = await connect({ servers: proxy.url, ...proxiedOpts });
    void (async () => {
      for await (const s of nc!.status()) statuses.push({ type: s.type, at: performance.now() });
    })();
  });

  after(async () => {
    await nc?.close().catch(() => {});
    await direct?.close().catch(() => {});
    await proxy?.close();
    await proxy?.close(); // idempotent
    assert.equal(proxy?.stats.open ?? 0, 0, 'close() leaves no connection behind');
    await server?.[Symbol.asyncDispose]();
  });

  test('request/reply through an open proxy', async () => {
    const m = await nc!.request('echo', 'hi', { timeout: 2_000 });
    assert.equal(m.string(), 'echo:hi');
    assert.equal(proxy!.mode, 'open');
    assert.ok(proxy!.stats.bytesUp > 0 && proxy!.stats.bytesDown > 0);
    assert.equal(proxy!.stats.open, 1);
  });

  test("cut('reset'): disconnect at once, requests fail; heal(): reconnect, requests work", async () => {
    const t0 = performance.now();
    proxy!.cut('reset');
    assert.equal(proxy!.mode, 'reset');
    await until('a disconnect report', async () => seen('disconnect', t0), 1_000, 10);
    const noticedMs = statuses.find((s) => s.type === 'disconnect' && s.at >= t0)!.at - t0;
    assert.ok(noticedMs < 500, `disconnect noticed after ${noticedMs.toFixed(0)} ms`);
    await assert.rejects(nc!.request('echo', 'cut', { timeout: 300 }));
    assert.equal(proxy!.stats.open, 0, 'reset holds no connection open');

    const t1 = performance.now();
    proxy!.heal();
    await until('a reconnect report', async () => seen('reconnect', t1), 3_000, 10);
    const m = await nc!.request('echo', 'healed', { timeout: 2_000 });
    assert.equal(m.string(), 'echo:healed');
  });

  test("cut('blackhole'): requests time out without a disconnect; a quick heal loses nothing", async () => {
    await nc!.flush();
    const t0 = performance.now();
    proxy!.cut('blackhole');
    await assert.rejects(nc!.request('echo', 'held', { timeout: 300 }), (err: unknown) => !isNoResponders(err));
    assert.ok(!seen('disconnect', t0), 'a silent partition is not reported as a disconnect at once');
    assert.equal(proxy!.stats.open, 1, 'the connection is kept open');
    proxy!.heal();
    const m = await nc!.request('echo', 'after', { timeout: 2_000 });
    assert.equal(m.string(), 'echo:after');
    assert.ok(!seen('disconnect', t0), 'healed before the client missed its pings: same connection');
  });

  test("cut('drop'): bytes are lost, not held; after heal the client recovers and requests work", async () => {
    await nc!.flush();
    const t0 = performance.now();
    const dropped = proxy!.stats.bytesDropped;
    proxy!.cut('drop');
    await assert.rejects(nc!.request('echo', 'lost', { timeout: 300 }));
    assert.ok(proxy!.stats.bytesDropped > dropped, 'the request was dropped');
    proxy!.heal();
    // The lost request is not delivered late; the connection carries on (or reconnects, if the hole broke the protocol).
    const m = await until(
      'a request through the healed proxy',
      () => nc!.request('echo', 'again', { timeout: 500 }).catch(() => null),
      8_000,
      50,
    );
    assert.equal(m.string(), 'echo:again');
    assert.ok(performance.now() - t0 < 8_500);
  });

  test("cut('blackhole') held long enough: client and server both drop the link; heal recovers", async () => {
    const sub = nc!.subscribe('through.proxy', {
      callback: (_err, m) => {
        m.respond('here');
      },
    });
    await nc!.flush();
    assert.equal((await direct!.request('through.proxy', '', { timeout: 1_000 })).string(), 'here');

    const t0 = performance.now();
    proxy!.cut('blackhole');
    // Server side: ping_interval 2 s, ping_max 2 in the launcher's config.
    await until(
      'the server to drop the blackholed client',
      async () => {
        try {
          await direct!.request('through.proxy', '', { timeout: 200 });
          return false;
        } catch (err) {
          return isNoResponders(err);
        }
      },
      10_000,
      100,
    );
    const droppedMs = performance.now() - t0;
    // Client side: pingInterval 500 ms, maxPingOut 2.
    const stale = statuses.find((s) => s.type === 'staleConnection' && s.at >= t0);
    assert.ok(stale, 'the client notices by missed pings');
    assert.ok(seen('disconnect', t0));
    console.log(`blackhole: client stale after ${(stale.at - t0).toFixed(0)} ms, server dropped it after ${droppedMs.toFixed(0)} ms`);

    const t1 = performance.now();
    proxy!.heal();
    await until(
      'the subscription to come back',
      async () => {
        try {
          return (await direct!.request('through.proxy', '', { timeout: 200 })).string() === 'here';
        } catch {
          return false;
        }
      },
      5_000,
      50,
    );
    assert.ok(seen('reconnect', t1));
    sub.unsubscribe();
  });

  test('latency delays both directions and keeps order while it changes', async () => {
    proxy!.setLatency(200);
    let t = performance.now();
    await nc!.request('echo', 'slow', { timeout: 3_000 });
    const slowMs = performance.now() - t;
    assert.ok(slowMs >= 380 && slowMs < 2_000, `round trip at 200 ms latency took ${slowMs.toFixed(0)} ms`);

    proxy!.setLatency(0);
    await nc!.flush(); // let anything still held at 200 ms drain
    t = performance.now();
    await nc!.request('echo', 'fast', { timeout: 1_000 });
    const fastMs = performance.now() - t;
    assert.ok(fastMs < 100, `round trip without latency took ${fastMs.toFixed(0)} ms`);

    const got: number[] = [];
    direct!.subscribe('seq', {
      callback: (_err, m) => {
        got.push(Number(m.string()));
      },
    });
    await direct!.flush();
    for (let i = 0; i < 200; i++) {
      // Dropping from 50 ms to 0 is where chunks timed independently would overtake held ones.
      if (i % 25 === 0) proxy!.setLatency((i / 25) % 2 === 0 ? 50 : 0);
      nc!.publish('seq', String(i));
      if (i % 5 === 4) await sleep(3); // separate chunks on the wire
    }
    proxy!.setLatency(0);
    await until('200 messages', async () => got.length >= 200, 5_000, 20);
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i));
  });
});
