// The event publisher keeps the history whole across a connection that died
// silently: events written into it are sent again as soon as the client has
// reconnected, not one publish timeout later (a process killed meanwhile would
// lose them, and the chaos checker would judge a history with holes).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { until } from '../helpers.ts';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { TcpProxy } from '../../chaos/real/proxy.ts';
import { bootstrap } from '../../nats/bootstrap.ts';
import { readTransitions, transitionPublisher } from '../../nats/events.ts';
import { type NatsServer, startServer } from '../../harness/launcher.ts';
import { names } from '../../nats/subjects.ts';

const n = names('evtest');

describe('event publisher', () => {
  let server: NatsServer | undefined;
  let proxy: TcpProxy | undefined;
  let direct: NatsConnection | undefined;
  let nc: NatsConnection | undefined;

  before(async () => {
    server = await startServer();
    direct = await connect({ servers: server.url });
    await bootstrap(direct, n, { replicas: 1 });
    proxy = await TcpProxy.start({ port: server.port });
    nc = await connect({ servers: proxy.url, reconnectTimeWait: 100, maxReconnectAttempts: -1, pingInterval: 300, maxPingOut: 2 });
  });
  after(async () => {
    await nc?.close().catch(() => {});
    await direct?.close().catch(() => {});
    await proxy?.close();
    await server?.[Symbol.asyncDispose]();
  });

  test('events written into a connection that silently lost them are resent on reconnect, once each', async () => {
    // A publish timeout far longer than the test's wait: only the resend can deliver in time.
    const publisher = transitionPublisher({ nc: nc!, names: n, node: 'p1', instance: 'i1', pid: 1, publishTimeoutMs: 120_000 });
    publisher.open();
    const reconnected = (async () => {
      for await (const s of nc!.status()) {
        if (s.type === 'reconnect') return publisher.resend();
      }
    })();
    const ev = (i: number) => publisher.record({ kind: 'probe', actor: 'a', from: null, to: `s${i}`, event: 'e', epoch: null });
    ev(1);
    await until('the first event stored', async () => (await readTransitions(direct!, n)).length === 1, 10_000);

    proxy!.cut('drop'); // bytes vanish; the client notices only by missed pongs
    ev(2);
    ev(3);
    await nc!.flush().catch(() => {}); // the events leave the client into the void
    proxy!.heal();
    await reconnected;
    const stored = await until('the lost events stored after the reconnect', async () => {
      const h = await readTransitions(direct!, n);
      return h.length >= 3 ? h : null;
    }, 20_000);
    assert.deepEqual(stored.map((t) => t.to), ['s1', 's2', 's3']);
    ev(4);
    await publisher.flush();
    assert.deepEqual(
      (await readTransitions(direct!, n)).map((t) => t.to),
      ['s1', 's2', 's3', 's4'],
      'each once: the message id dedupes the resend',
    );
  });
});
