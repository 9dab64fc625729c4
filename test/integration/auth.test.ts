// Roles on a real nats-server started as `shoal up --auth DIR` starts it:
// anonymous refused; the connect files work as they are with nats.js v3 and
// the older `nats` v2; a client can use the public API and nothing else (no
// forged records, leases or checkpoints, no checkpoint reads, no node subjects,
// no drain); a node cannot drain another; admin can. Every refused attempt
// leaves the cluster running and its data as it was.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withCluster } from '../helpers.ts';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { connect as connectV2, StringCodec } from 'nats';
import { type LocalCluster, waitForStatus } from '../../harness/local.cluster.ts';
import { callApi } from '../../nats/client.ts';
import { runDoctor } from '../../cli/doctor.ts';
import { encode } from '../../store/codec.ts';
import type { ClusterView } from '../../api/contract.ts';
import { names } from '../../nats/subjects.ts';
import { keys } from '../../store/keys.ts';

const n = names();
const file = (dir: string, role: string) => JSON.parse(readFileSync(join(dir, `${role}.json`), 'utf8'));

/** A request the server must refuse for lack of permission (not a timeout, not an answer). */
async function refused(what: string, p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (e: Error) => /permissions? violation/i.test(e.message), `${what} must be refused`);
}

/** A subscription the server must refuse: it ends with a permissions error. */
async function subscribeRefused(nc: NatsConnection, subject: string): Promise<void> {
  const sub = nc.subscribe(subject);
  const ended = await Promise.race([sub.closed, new Promise((r) => setTimeout(() => r('still open'), 5_000))]);
  assert.match(String(ended), /permissions? violation/i, `subscribing to ${subject} must be refused`);
}

describe('shoal up --auth: roles and subject permissions, 2 node processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-auth-'));
  let c: LocalCluster;
  let client: NatsConnection;
  let admin: NatsConnection;
  let node: NatsConnection;

  withCluster({ nodes: 2, auth: dir }, (fx) => ({ c } = fx));
  before(async () => {
    client = await connect(file(dir, 'client'));
    admin = await connect(file(dir, 'admin'));
    node = await connect({ ...file(dir, 'node'), inboxPrefix: n.nodeInbox });
  });
  after(async () => {
    await Promise.all([client, admin, node].map((x) => x?.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('anonymous connections are refused; the connect files work as they are, with nats.js v3 and nats v2', async () => {
    await assert.rejects(connect({ servers: c.urls }), /authorization violation/i);
    await assert.rejects(connect({ servers: c.urls, user: 'client', pass: 'wrong' }), /authorization violation/i);
    const v2 = await connectV2(file(dir, 'client'));
    try {
      const sc = StringCodec();
      const s = JSON.parse(sc.decode((await v2.request(n.api('status'), sc.encode('{}'), { timeout: 5_000 })).data)) as ClusterView;
      assert.equal(s.nodes.length, 2);
    } finally {
      await v2.close();
    }
  });

  test('a client uses the public API and nothing else; its refused attempts change nothing', async () => {
    await callApi(client, n, 'jobs.submit', { id: 'kept', type: 'noop', input: { v: 1 } });
    const done = await callApi(client, n, 'jobs.wait', { id: 'kept', timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    const kvm = new Kvm(admin);
    const jobs = await kvm.open(n.jobsBucket);
    const leases = await kvm.open(n.leasesBucket);
    const recordBefore = await jobs.get(keys.job('kept'));
    const leaderBefore = await leases.get(keys.leader);

    const forged = encode({ ...done, state: 'queued', owner: 'mallory' });
    await refused('forging a job record', client.request(`$KV.${n.jobsBucket}.${keys.job('kept')}`, forged));
    await refused('forging the leader lease', client.request(`$KV.${n.leasesBucket}.${keys.leader}`, encode({ nodeId: 'mallory' })));
    await refused('forging a node lease', client.request(`$KV.${n.leasesBucket}.${keys.node('mallory')}`, encode({})));
    await refused('writing a checkpoint', client.request(`$KV.${n.checkpointsBucket}.${keys.job('kept')}`, encode({ progress: 1 })));
    await refused(
      'reading a checkpoint',
      client.request(`$JS.API.DIRECT.GET.KV_${n.checkpointsBucket}.$KV.${n.checkpointsBucket}.${keys.job('kept')}`),
    );
    await refused('the JetStream API', client.request('$JS.API.INFO'));
    await refused('opening a bucket', new Kvm(client).open(n.checkpointsBucket).then((kv) => kv.status()));
    await refused('publishing an assignment to a node', client.request(n.nodeAssign('n1'), encode({ jobs: [] })));
    await refused('draining a node', callApi(client, n, 'nodes.drain', { id: 'n1' }));
    await subscribeRefused(client, n.nodeAssign('n1'));
    await subscribeRefused(client, n.auction);
    await subscribeRefused(client, `${n.nodeInbox}.>`);
    await subscribeRefused(client, n.api('jobs.submit'));

    const s = await callApi(client, n, 'status');
    assert.deepEqual(s.nodes.map((x) => x.id).sort(), ['n1', 'n2'], 'every node still runs');
    const recordAfter = await jobs.get(keys.job('kept'));
    assert.equal(recordAfter?.revision, recordBefore?.revision, 'the job record is untouched');
    assert.equal(await leases.get(keys.node('mallory')), null, 'no forged node lease');
    assert.equal((await leases.get(keys.leader))?.value.length, leaderBefore?.value.length);
    assert.equal((await callApi(client, n, 'jobs.get', { id: 'kept' })).state, 'succeeded');
  });

  test('shoal doctor says what each role may do', async () => {
    const role = async (r: string) => {
      const { checks, code } = await runDoctor({ connect: join(dir, `${r}.json`), prefix: 'shoal' });
      return { code, text: checks.map((x) => `${x.level} ${x.what}`).join('\n') };
    };
    const client = await role('client');
    assert.equal(client.code, 0, client.text);
    assert.match(client.text, /warn these credentials may not use the JetStream API/);
    assert.match(client.text, /ok credentials: client — public API yes, JetStream API no, admin endpoints no/);
    const admin = await role('admin');
    assert.match(admin.text, /ok credentials: admin — public API yes, JetStream API yes, admin endpoints yes/);
    assert.match(admin.text, /ok bucket shoal_leases: lease TTL 1000 ms/);
    const anonymous = await runDoctor({ nats: c.urls[0], prefix: 'shoal' });
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.checks[0]!.fix!, /the server wants credentials/);
  });

  test('a node reads and writes its buckets but cannot drain another node; admin can', async () => {
    const kv = await new Kvm(node).open(n.checkpointsBucket);
    await kv.put('job.node-can-write', encode({ progress: 0.5 }));
    assert.ok(await kv.get('job.node-can-write'));
    await refused('a node draining another', callApi(node, n, 'nodes.drain', { id: 'n1' }));
    await subscribeRefused(node, '_INBOX.>');
    assert.equal((await callApi(admin, n, 'status')).nodes.length, 2, 'n1 still runs');

    const n2 = c.nodes.find((p) => p.id === 'n2')!;
    const reply = await callApi(admin, n, 'nodes.drain', { id: 'n2' });
    assert.deepEqual(reply, { id: 'n2', draining: true });
    assert.equal((await n2.exited).code, 0, 'the drained node exits cleanly');
    await waitForStatus(c.admin, (s) => s.nodes.length === 1 && s.leader?.nodeId === 'n1', { what: 'n1 alone, leading' });
    await assert.rejects(callApi(admin, n, 'nodes.drain', { id: 'nobody' }), /no live node with id 'nobody'/);
  });
});
