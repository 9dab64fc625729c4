// A hostile client, holding only the `client` credential of `shoal up --auth`
// and speaking through the older `nats` v2 client (not the project's): it
// cannot run a command on a node, and no reply subject it names makes a node
// write anywhere but an inbox. Every attempt is compared with the buckets'
// revisions and the leases before and after.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectV2, headers as headersV2, type NatsConnection as V2Connection, StringCodec } from 'nats';
import { type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { type LocalCluster } from '../../harness/local.cluster.ts';
import type { JobRecord } from '../../api/contract.ts';
import { callApi } from '../../nats/client.ts';
import { decodeLease } from '../../store/lease.records.ts';
import { names } from '../../nats/subjects.ts';
import { keys } from '../../store/keys.ts';
import { until, withCluster } from '../helpers.ts';

const n = names();
const sc = StringCodec();

describe('a hostile client with the client credential (nats v2 client), 2 node processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-hostile-'));
  let c: LocalCluster;
  let hostile: V2Connection;
  let admin: NatsConnection;

  withCluster({ nodes: 2, auth: dir }, (fx) => ({ c, nc: admin } = fx));
  before(async () => {
    hostile = await connectV2(JSON.parse(readFileSync(join(dir, 'client.json'), 'utf8')));
  });
  after(async () => {
    await hostile?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A request through the hostile client (v2 API), JSON in and out. */
  const request = async <T>(endpoint: string, body: unknown, timeout = 10_000): Promise<T> =>
    JSON.parse(sc.decode((await hostile.request(n.api(endpoint), sc.encode(JSON.stringify(body)), { timeout })).data)) as T;

  test('exec is not a job type unless a node was started with --allow-exec: the command never runs', async () => {
    const sub = await request<{ id: string; created: boolean }>('jobs.submit', {
      id: 'env-dump',
      type: 'exec',
      input: { cmd: 'env' },
      pendingTimeoutMs: 1_000,
    });
    assert.equal(sub.created, true);
    const r = await request<JobRecord>('jobs.wait', { id: 'env-dump', timeoutMs: 15_000 }, 20_000);
    assert.equal(r.state, 'failed');
    assert.match(r.error ?? '', /unknown job type 'exec'/);
    assert.equal(r.result, null, 'no output of the command anywhere in the record');
    assert.equal(r.attempts.filter((a) => a.startedAt !== null).length, 0, 'no node started it');
    const status = await callApi(admin, n, 'status');
    assert.ok(status.nodes.every((x) => !x.types.includes('exec')), 'no node offers exec');
  });

  test('reply subjects into $KV, $JS and shoal.* make no node write there; the requests go unanswered', async () => {
    const done = await request<{ id: string }>('jobs.submit', { id: 'kept', type: 'noop' });
    assert.equal((await request<JobRecord>('jobs.wait', { id: done.id, timeoutMs: 10_000 })).state, 'succeeded');

    const jsm = await jetstreamManager(admin);
    const lastSeq = async (stream: string) => (await jsm.streams.info(stream)).state.last_seq;
    const leases = await new Kvm(admin).open(n.leasesBucket);
    const leaseHolders = async () => {
      const out: Record<string, string> = {};
      for (const key of [keys.leader, keys.node('n1'), keys.node('n2')]) {
        const e = await leases.get(key);
        // A value that is not a lease (a status reply written over it) would fail to decode here.
        out[key] = e?.operation === 'PUT'
          ? (({ value: v, epoch }) => `${v.holder.id}@${epoch}`)(decodeLease(key, e.value, e.revision, e.created))
          : 'none';
      }
      return out;
    };
    const before = {
      jobs: await lastSeq(`KV_${n.jobsBucket}`),
      ckpt: await lastSeq(`KV_${n.checkpointsBucket}`),
      holders: await leaseHolders(),
      logged: c.logs(1_000).match(/refused to reply/g)?.length ?? 0,
    };

    const spoofed = [
      `$KV.${n.jobsBucket}.${keys.job('kept')}`,
      `$KV.${n.jobsBucket}.${keys.job('forged')}`,
      `$KV.${n.checkpointsBucket}.${keys.job('kept')}`,
      `$KV.${n.leasesBucket}.${keys.leader}`,
      `$KV.${n.leasesBucket}.${keys.node('n1')}`,
      `$JS.API.STREAM.PURGE.KV_${n.jobsBucket}`,
      `$JS.API.STREAM.DELETE.KV_${n.jobsBucket}`,
      n.nodeAssign('n1'),
      n.nodeCancel('n1'),
      n.api('jobs.submit'),
      n.jobsQueued,
    ];
    const bodies: Array<[string, unknown]> = [
      ['status', {}],
      ['jobs.get', { id: 'kept' }],
      ['jobs.list', {}],
      ['jobs.wait', { id: 'kept' }],
      ['jobs.cancel', { id: 'kept' }],
      ['jobs.submit', { id: 'via-spoof', type: 'noop' }],
    ];
    for (const reply of spoofed) {
      for (const [endpoint, body] of bodies) hostile.publish(n.api(endpoint), sc.encode(JSON.stringify(body)), { reply });
    }
    await hostile.flush();
    // Every node logs its refusals (at most a line per 10 s each): wait until both have, then look
    // (without the refusal, the writes below are what shows it).
    const refusedBoth = await until('both nodes to refuse the spoofed replies', async () => {
      const lines = c.logs(1_000).match(/refused to reply/g)?.length ?? 0;
      return lines >= before.logged + 2 ? true : null;
    }, 10_000).catch(() => false);

    assert.equal(await lastSeq(`KV_${n.jobsBucket}`), before.jobs, 'no job record written (nor the spoofed submit stored)');
    assert.equal(await lastSeq(`KV_${n.checkpointsBucket}`), before.ckpt, 'no checkpoint written');
    assert.deepEqual(await leaseHolders(), before.holders, 'leader and node leases unchanged');
    const kept = await request<JobRecord>('jobs.get', { id: 'kept' });
    assert.equal(kept.state, 'succeeded', 'the record still reads as it was');
    const list = await request<{ jobs: JobRecord[] }>('jobs.list', {});
    assert.ok(list.jobs.every((j) => j.id !== 'via-spoof'), 'a submit whose reply was not an inbox stored nothing');
    assert.equal((await callApi(admin, n, 'status')).nodes.length, 2, 'both nodes still members');
    assert.ok(refusedBoth, `both nodes log the refusals:\n${c.logs(5)}`);
  });

  test('oversized and hostile CBOR bodies are answered 4xx (never 500), store nothing, and the API keeps serving', async () => {
    const jsm = await jetstreamManager(admin);
    const before = (await jsm.streams.info(`KV_${n.jobsBucket}`)).state.last_seq;
    const cbor = headersV2();
    cbor.set('Content-Type', 'application/cbor');
    const bodies: Array<[string, Uint8Array]> = [
      ['a body over the request limit', new Uint8Array(600 * 1024)],
      ['an input over the input limit (JSON)', sc.encode(JSON.stringify({ type: 'noop', input: 'x'.repeat(300 * 1024) }))],
      ['a reference to nothing (CBOR tag 29)', Uint8Array.from([0xd8, 0x1d, 0x05])],
      ['a record definition tag (cbor-x)', Uint8Array.from([0xd9, 0xdf, 0xff, 0x83, 0x00, 0x01, 0x02])],
      ['a truncated CBOR map', Uint8Array.from([0xbf, 0x64, 0x74, 0x79])],
      [
        'a bignum input (CBOR tag 2)',
        Uint8Array.from([
          0xa2,
          0x64,
          0x74,
          0x79,
          0x70,
          0x65,
          0x64,
          0x6e,
          0x6f,
          0x6f,
          0x70,
          0x65,
          0x69,
          0x6e,
          0x70,
          0x75,
          0x74,
          0xc2,
          0x49,
          1,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
        ]),
      ],
    ];
    for (const [what, body] of bodies) {
      const m = await hostile.request(n.api('jobs.submit'), body, {
        timeout: 5_000,
        headers: what.includes('JSON') || what.includes('limit') ? undefined : cbor,
      });
      const code = m.headers?.get('Nats-Service-Error-Code') ?? '';
      assert.match(code, /^4\d\d$/, `${what}: answered ${code || 'ok'}`);
    }
    assert.equal((await jsm.streams.info(`KV_${n.jobsBucket}`)).state.last_seq, before, 'nothing stored');
    const ok = await request<{ id: string }>('jobs.submit', { type: 'noop' });
    assert.equal((await request<JobRecord>('jobs.wait', { id: ok.id, timeoutMs: 10_000 })).state, 'succeeded');
  });
});
