// Operations on real processes: `shoal doctor` on a healthy cluster and on no
// cluster at all; `shoal node --config` with a flag beating the file; a rolling
// restart (`shoal rollout` against supervised nodes) under steady load with
// zero failed and zero duplicated jobs.
import { withCluster } from '../helpers.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsConnection } from '@nats-io/transport-node';
import { countPrimes } from '../../node/handlers.ts';
import { checkHistory } from '../../chaos/checker.ts';
import { runDoctor } from '../../cli/doctor.ts';
import { runRollout } from '../../cli/rollout.ts';
import { freePort } from '../../harness/launcher.ts';
import { type LocalCluster, waitForReady, waitForStatus } from '../../harness/local.cluster.ts';
import { spawnNode } from '../../harness/spawn.ts';
import { callApi } from '../../nats/client.ts';
import { readTransitions } from '../../nats/events.ts';
import { names } from '../../nats/subjects.ts';
import { sleep } from '../../base/time.ts';

const n = names();

describe('operations: doctor, config files, rolling restart (3 supervised node processes, lease TTL 1 s)', () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  let dir: string;

  withCluster({ nodes: 3, restart: true, slots: 2 }, (fx) => ({ c, nc } = fx));
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-ops-'));
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('doctor: a healthy cluster passes every check and names what it saw; no server fails with a fix', async () => {
    const { checks, code } = await runDoctor({ nats: c.urls[0], prefix: 'shoal' });
    const text = checks.map((x) => `${x.level} ${x.what}`).join('\n');
    assert.equal(code, 0, text);
    assert.ok(checks.every((x) => x.level !== 'fail'), text);
    assert.match(text, /ok connected to .*nats-server 2\.\d+/);
    assert.match(text, /ok JetStream is enabled/);
    assert.match(text, /ok bucket shoal_leases: lease TTL 1000 ms, history 1, replicas 1/);
    assert.match(text, /ok 3 live node\(s\); n\d leads/);
    assert.match(text, /ok clocks: nodes differ from the NATS server by at most \d+ ms/);
    assert.match(text, /ok credentials: admin — public API yes, JetStream API yes, admin endpoints yes/);

    const none = await runDoctor({ nats: `nats://127.0.0.1:${await freePort()}`, prefix: 'shoal' });
    assert.equal(none.code, 1);
    assert.equal(none.checks[0]!.level, 'fail');
    assert.match(none.checks[0]!.what, /cannot connect/);
    assert.match(none.checks[0]!.fix!, /shoal up|--nats/);
  });

  test('shoal node --config: the file sets what the flags do not; a flag beats the file', async () => {
    const file = join(dir, 'node.json');
    writeFileSync(file, JSON.stringify({ slots: 3, 'io-slots': 1, label: { zone: 'cfg' }, 'lease-ttl': 1000 }));
    const p = spawnNode({ id: 'cfg1', nats: c.urls[0]!, args: ['--config', file, '--io-slots', '5'] });
    try {
      const s = await waitForReady(c.urls, 4);
      const me = s.nodes.find((x) => x.id === 'cfg1')!;
      assert.equal(me.slots, 3, 'from the file');
      assert.deepEqual(me.labels, { zone: 'cfg' }, 'from the file');
      assert.equal(me.ioSlots, 5, 'the flag beats the file');
    } finally {
      assert.equal((await p.stop()).code, 0);
    }
    await waitForStatus(c.urls, (s) => s.nodes.length === 3, { what: 'cfg1 gone' });
  });

  test('rollout under steady load: every node restarted one at a time, zero failed, zero duplicated jobs', async () => {
    const before = (await waitForReady(c.urls, 3)).nodes;
    const ids: string[] = [];
    let loading = true;
    const load = (async () => {
      for (let i = 0; loading; i++) {
        const id = `roll-${i}`;
        await callApi(nc, n, 'jobs.submit', { id, type: 'primes', input: { limit: 60_000, chunk: 5_000, pauseMs: 60 } });
        ids.push(id);
        await sleep(150);
      }
    })();
    const lines: string[] = [];
    const code = await runRollout({ nats: c.urls[0], prefix: 'shoal', timeout: 60_000 }, (l) => lines.push(l));
    loading = false;
    await load;
    assert.equal(code, 0, lines.join('\n'));
    assert.equal(lines.filter((l) => /: back \(pid \d+\)/.test(l)).length, 3, lines.join('\n'));
    const after = (await waitForReady(c.urls, 3)).nodes;
    for (const b of before) assert.notEqual(after.find((x) => x.id === b.id)!.pid, b.pid, `${b.id} was restarted`);

    assert.ok(ids.length >= 20, `steady load: ${ids.length} jobs submitted during the rollout`);
    const records = await Promise.all(ids.map((id) => callApi(nc, n, 'jobs.wait', { id, timeoutMs: 60_000 }, 65_000)));
    for (const r of records) {
      assert.equal(r.state, 'succeeded', `${r.id}: ${JSON.stringify(r.attempts)}`);
      assert.deepEqual(r.result, { count: countPrimes(60_000) });
      assert.equal(r.attempts.filter((a) => a.outcome === 'succeeded').length, 1, `${r.id} ran to the end once`);
    }
    const handedBack = records.filter((r) => r.attempts.some((a) => a.outcome === 'preempted')).length;
    process.stdout.write(`# rollout: ${ids.length} jobs during the rollout, ${handedBack} handed back by a draining node and resumed\n`);
    const history = await readTransitions(nc, n);
    const v = checkHistory(history, { records });
    assert.deepEqual(v.map((x) => `[${x.invariant}] ${x.message}`), []);
  });
});
