// Requests that ride through a node's death: a plain one-shot `jobs.wait` or
// `jobs.get` (no retry, any NATS client) sent the moment the dispatcher or its
// standby is SIGKILLed is still answered, because both answer every read (no
// queue group), so whichever lives answers. (A read sent while the dispatcher
// dies before it has named a standby has no second reader: `callApi` retries.)
import { withCluster } from '../helpers.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { type LocalCluster } from '../../harness/local.cluster.ts';
import type { JobRecord } from '../../api/contract.ts';
import { callApi } from '../../nats/client.ts';
import { encodeJson } from '../../store/codec.ts';
import { defaults } from '../../base/defaults.ts';
import { ApiError } from '../../base/errors.ts';
import { names } from '../../nats/subjects.ts';

const n = names();

describe('one-shot requests sent as a node dies', () => {
  let c: LocalCluster;
  let nc: NatsConnection;

  withCluster({ nodes: 4 }, (fx) => ({ c, nc } = fx));

  /** Both readers (dispatcher and standby) are serving once a get is answered twice; returns who leads and who stands by. */
  async function twoReaders(id: string): Promise<{ leader: string; standby: string }> {
    for (let tries = 0; tries < 60; tries++) {
      const status = await callApi(nc, n, 'status', {});
      const answers = await nc.requestMany(n.api('jobs.get'), encodeJson({ id }), { strategy: 'count', maxMessages: 2, maxWait: 500 });
      let count = 0;
      for await (const _ of answers) count++;
      if (count === 2 && status.leader?.standby) return { leader: status.leader.nodeId, standby: status.leader.standby };
    }
    throw new Error(`no dispatcher and standby both answering reads within 60 tries\n${c.logs(20)}`);
  }

  for (const role of ['dispatcher', 'standby'] as const) {
    test(`30 plain waits and 30 plain gets sent right after a SIGKILL of the ${role} are all answered`, async () => {
      const ids = Array.from({ length: 8 }, (_, i) => `ride-${role}-${i}`);
      for (const id of ids) await callApi(nc, n, 'jobs.submit', { type: 'sleep', id, input: { ms: 1_500 } });
      const roles = await twoReaders(ids[0]!);
      const victim = c.nodes.find((x) => x.id === (role === 'dispatcher' ? roles.leader : roles.standby))!;
      await oneShotReadsSurvive(ids, victim.kill());
    });
  }

  async function oneShotReadsSurvive(ids: string[], killed: Promise<unknown>) {
    // At once, before the server has noticed the connection is gone: one request each, no retry.
    const waits = Array.from(
      { length: 30 },
      (_, i) =>
        nc.request(n.api('jobs.wait'), encodeJson({ id: ids[i % ids.length], timeoutMs: 20_000 }), { timeout: 25_000 })
          .then((m) => m.json<JobRecord>()),
    );
    const gets = Array.from(
      { length: 30 },
      (_, i) => nc.request(n.api('jobs.get'), encodeJson({ id: ids[i % ids.length] }), { timeout: 5_000 }).then((m) => m.json<JobRecord>()),
    );
    await killed;
    const got = await Promise.allSettled(gets);
    assert.deepEqual(got.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), []);
    const waited = await Promise.allSettled(waits);
    assert.deepEqual(waited.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), []);
    for (const r of waited) assert.equal((r as PromiseFulfilledResult<JobRecord>).value.state, 'succeeded');
  }

  test('the client retries idempotent calls in short attempts, asks waits in slices, and never repeats a submit without an id', async () => {
    // A stand-in for nodes that lose requests, on its own prefix: it drops what `drop` says, answers the rest.
    const t = names('retrytest');
    const seen: Record<string, unknown[]> = {};
    const serve = (endpoint: string, reply: (body: Record<string, unknown>, k: number) => unknown | null) =>
      nc.subscribe(t.api(endpoint), {
        callback: (_err, m) => {
          const body = m.json<Record<string, unknown>>();
          const k = (seen[endpoint] ??= []).push(body);
          const out = reply(body, k);
          if (out !== null) m.respond(encodeJson(out));
        },
      });
    const subs = [
      serve('status', (_b, k) => (k === 1 ? null : { leader: null, nodes: [] })),
      serve('jobs.wait', (b, k) => (k < 3 ? null : { id: b.id, state: 'succeeded' })),
      serve('jobs.submit', () => null),
    ];
    try {
      const began = Date.now();
      assert.deepEqual(await callApi(nc, t, 'status', {}, 6_000), { leader: null, nodes: [] });
      assert.ok(Date.now() - began < 6_000 / 3 + 1_000, 'answered by the second attempt');
      assert.equal(seen.status!.length, 2);

      await callApi(nc, t, 'jobs.wait', { id: 'w', timeoutMs: 60_000 }, 65_000);
      assert.equal(seen['jobs.wait']!.length, 3);
      for (const b of seen['jobs.wait']!) assert.ok((b as { timeoutMs: number }).timeoutMs <= defaults.waitSliceMs);

      await assert.rejects(callApi(nc, t, 'jobs.submit', { type: 'noop' }, 1_500), /timeout/i);
      assert.equal(seen['jobs.submit']!.length, 1, 'a submit without an id is sent once');
    } finally {
      subs.forEach((s) => s.unsubscribe());
    }
  });

  test('a wait that runs out after several slices is one 408 naming the whole time', async () => {
    const t = names('slicetest');
    const slices: number[] = [];
    // Like a node: answers 408 when the slice it was asked for is over.
    const sub = nc.subscribe(t.api('jobs.wait'), {
      callback: (_err, m) => {
        const ms = m.json<{ timeoutMs: number }>().timeoutMs;
        slices.push(ms);
        const h = headers();
        h.set('Nats-Service-Error-Code', '408');
        h.set('Nats-Service-Error', 'slice over');
        setTimeout(() => m.respond(encodeJson({ error: { code: 'timeout', message: 'slice over' } }), { headers: h }), ms);
      },
    });
    try {
      await assert.rejects(
        callApi(nc, t, 'jobs.wait', { id: 'w', timeoutMs: defaults.waitSliceMs + 1_000 }, defaults.waitSliceMs + 6_000),
        (e: unknown) =>
          e instanceof ApiError && e.status === 408 && new RegExp(`not finished within ${defaults.waitSliceMs + 1_000} ms`).test(e.message),
      );
      assert.equal(slices.length, 2);
      assert.equal(slices[0], defaults.waitSliceMs);
      assert.ok(slices[1]! <= 1_000 && slices[1]! > 900, String(slices));
    } finally {
      sub.unsubscribe();
    }
  });
});
