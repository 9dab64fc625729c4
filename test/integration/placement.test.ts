// The auction's baselines on real processes: centralized (the leader assigns
// without asking for bids) and pull (nodes take jobs from a JetStream work
// queue): every job runs once, the work spreads over the nodes, and no node
// runs more than its slots (phase awareness off: a sleep then holds its slot).
import { withCluster } from '../helpers.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type NatsConnection } from '@nats-io/transport-node';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { Kvm } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
import { natsBucket } from '../../store/bucket.ts';
import { JobStore } from '../../store/job.store.ts';
import { newJobRecord } from '../../machines/job.machine.ts';

const n = names();

for (const strategy of ['centralized', 'pull']) {
  describe(`shoal node --placement ${strategy}: 3 node processes with 2 slots each`, () => {
    let nc: NatsConnection;

    withCluster({
      nodes: 3,
      slots: 2,
      nodeArgs: ['--placement', strategy, '--io-slots', '0'],
    }, (fx) => ({ nc } = fx));

    test('12 sleep jobs: each succeeds once, every node gets work, none runs more than its 2 slots at once', async () => {
      const ids = Array.from({ length: 12 }, (_, i) => `${strategy}-${i}`);
      await Promise.all(ids.map((id) => callApi(nc, n, 'jobs.submit', { id, type: 'sleep', input: { ms: 300 } })));
      const done = await Promise.all(ids.map((id) => callApi(nc, n, 'jobs.wait', { id, timeoutMs: 30_000 }, 35_000)));
      const byNode = new Map<string, Array<[number, number]>>();
      for (const r of done) {
        assert.equal(r.state, 'succeeded', `${r.id}: ${r.error}`);
        const won = r.attempts.filter((a) => a.outcome === 'succeeded');
        assert.equal(won.length, 1);
        byNode.set(won[0]!.node, [...(byNode.get(won[0]!.node) ?? []), [won[0]!.startedAt!, won[0]!.endedAt!]]);
      }
      assert.equal(byNode.size, 3, `work on every node: ${[...byNode.keys()].join(', ')}`);
      for (const [node, spans] of byNode) {
        const most = Math.max(...spans.map(([s]) => spans.filter(([a, b]) => a <= s && s < b).length));
        assert.ok(most <= 2, `${node} ran ${most} at once`);
      }
    });

    if (strategy === 'pull') {
      test("a retry whose backoff was set by a clock ahead of the puller's waits on the queue, never dropped", async () => {
        // As a failing node whose clock runs 2 s ahead would leave it: queued, not before 2 s from now here.
        const jobs = natsBucket(await new Kvm(nc).open(n.jobsBucket), n.jobsBucket, await jetstreamManager(nc));
        const record = {
          ...newJobRecord({ id: 'skewed', type: 'noop', input: null, priority: 5, maxAttempts: 3, timeoutMs: 10_000 }, Date.now()),
        };
        record.notBefore = Date.now() + 2_000;
        await new JobStore(jobs).create(record);
        const r = await callApi(nc, n, 'jobs.wait', { id: 'skewed', timeoutMs: 15_000 }, 20_000);
        assert.equal(r.state, 'succeeded');
        assert.ok(r.attempts[0]!.assignedAt >= record.notBefore, 'not before its backoff');
      });
    }
  });
}
