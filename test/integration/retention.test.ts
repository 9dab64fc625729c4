// Retention: a finished job's record and checkpoint are deleted once it has
// been finished longer than the cluster's retention (or its own), by the
// leader; live jobs and jobs still within their retention are untouched. And
// a full jobs bucket answers submits 507 while leadership and leases carry on.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { keys } from '../../store/keys.ts';
import { ApiError } from '../../base/errors.ts';
import { until, withCluster } from '../helpers.ts';
import { sleep } from '../../base/time.ts';

const n = names();

describe('retention: 2 node processes, finished jobs kept 2 s', () => {
  let nc: NatsConnection;
  withCluster({ nodes: 2, nodeArgs: ['--retention', '2000'] }, (fx) => ({ nc } = fx));

  test('records and checkpoints of finished jobs go after the retention; live and longer-kept jobs stay', async () => {
    const live = await callApi(nc, n, 'jobs.submit', { type: 'sleep', input: { ms: 20_000 } });
    const kept = await callApi(nc, n, 'jobs.submit', { type: 'noop', retentionMs: 60_000 });
    const gone = await callApi(nc, n, 'jobs.submit', { type: 'primes', input: { limit: 60_000, chunk: 10_000 } });
    const finished = await callApi(nc, n, 'jobs.wait', { id: gone.id, timeoutMs: 10_000 });
    assert.equal(finished.state, 'succeeded');
    assert.equal((await callApi(nc, n, 'jobs.wait', { id: kept.id, timeoutMs: 10_000 })).state, 'succeeded');
    const ckpts = await new Kvm(nc).open(n.checkpointsBucket);
    assert.equal((await ckpts.get(keys.job(gone.id)))?.operation, 'PUT', 'it checkpointed');

    const isGone = async (id: string) =>
      await callApi(nc, n, 'jobs.get', { id }).then(() => false, (e) => e instanceof ApiError && e.status === 404);
    await until('the finished record deleted', () => isGone(gone.id), 10_000);
    assert.ok(Date.now() - finished.updatedAt >= 2_000, 'not before its retention');
    assert.notEqual((await ckpts.get(keys.job(gone.id)))?.operation, 'PUT', 'its checkpoint deleted too');
    assert.equal((await callApi(nc, n, 'jobs.get', { id: kept.id })).state, 'succeeded', 'its own retention is longer');
    assert.equal((await callApi(nc, n, 'jobs.get', { id: live.id })).state, 'running', 'a live job is never deleted');
    // Nothing stays behind, on this server (2.10, no per-message TTL) too: the purge's marker is removed once
    // watchers had time to see it (here the 2 s retention), and the checkpoint outright.
    const jsm = await jetstreamManager(nc);
    const stored = async (bucket: string) =>
      Object.keys((await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `$KV.${bucket}.${keys.job(gone.id)}` })).state.subjects ?? {})
        .length;
    await until('the purge marker removed', async () => (await stored(n.jobsBucket)) === 0, 15_000);
    assert.equal(await stored(n.checkpointsBucket), 0, 'no checkpoint message left');
    assert.equal(await stored(n.jobsBucket), 0);
    const status = await callApi(nc, n, 'status');
    assert.equal(status.jobs.succeeded, 1, 'the counts forget it too');
    // The id is free again: a new job under it starts afresh.
    const again = await callApi(nc, n, 'jobs.submit', { id: gone.id, type: 'noop' });
    assert.equal(again.created, true);
  });
});

describe('storage full: 2 node processes, the jobs bucket capped at what it holds', () => {
  let nc: NatsConnection;
  withCluster({ nodes: 2 }, (fx) => ({ nc } = fx));

  test('submits are answered 507 and store nothing; leadership and leases carry on; with room again the running job commits and submits go on', async () => {
    const running = await callApi(nc, n, 'jobs.submit', { type: 'sleep', input: { ms: 2_500 } });
    const jsm = await jetstreamManager(nc);
    const stream = `KV_${n.jobsBucket}`;
    const info = await jsm.streams.info(stream);
    const leaderBefore = (await callApi(nc, n, 'status')).leader;
    await jsm.streams.update(stream, { ...info.config, max_bytes: info.state.bytes + 1_024, discard: DiscardPolicy.New });
    try {
      let refused: ApiError | null = null;
      for (let i = 0; i < 50 && !refused; i++) {
        await callApi(nc, n, 'jobs.submit', { type: 'noop', id: `full-${i}` }).catch((e) => {
          if (!(e instanceof ApiError)) throw e;
          refused = e;
        });
      }
      const e = refused as ApiError | null;
      assert.ok(e, 'a submit was refused');
      assert.equal(e.status, 507);
      assert.equal(e.code, 'storage_full');
      assert.match(e.message, /storage for jobs is full .*maximum bytes exceeded/);
      const id = /full-\d+/.exec(String(e.message))?.[0];
      if (id) await assert.rejects(callApi(nc, n, 'jobs.get', { id }), (x: unknown) => x instanceof ApiError && x.status === 404);
      // Nobody lost a lease or the leadership (the leases bucket is a stream of its own).
      await sleep(3_000); // past the running job's end and a few lease renewals, all while full
      const status = await callApi(nc, n, 'status');
      assert.equal(status.leader?.nodeId, leaderBefore?.nodeId);
      assert.equal(status.leader?.epoch, leaderBefore?.epoch);
      assert.equal(status.nodes.length, 2);
    } finally {
      await jsm.streams.update(stream, { ...info.config });
    }
    // The running job's result write waited for room (retried, not lost), and new submits are taken again.
    assert.equal((await callApi(nc, n, 'jobs.wait', { id: running.id, timeoutMs: 10_000 })).state, 'succeeded');
    const after = await callApi(nc, n, 'jobs.submit', { type: 'noop' });
    assert.equal((await callApi(nc, n, 'jobs.wait', { id: after.id, timeoutMs: 10_000 })).state, 'succeeded');
  });
});
