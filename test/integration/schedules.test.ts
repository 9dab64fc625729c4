// Schedules as a user drives them, over the public API against real node
// processes: a schedule firing every second submits each tick's job exactly
// once, with no tick missed, while its leader is killed with SIGKILL twice;
// bad expressions, time zones and names are refused clearly; pause, resume
// and remove do what they say.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NatsConnection } from '@nats-io/transport-node';
import type { LocalCluster } from '../../harness/local.cluster.ts';
import { waitForStatus } from '../../harness/local.cluster.ts';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { until, withCluster } from '../helpers.ts';
import { sleep } from '../../base/time.ts';
import type { JobRecord } from '../../api/contract.ts';

const n = names();

async function jobsOf(nc: NatsConnection, name: string): Promise<JobRecord[]> {
  const out: JobRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await callApi(nc, n, 'jobs.list', { type: 'noop', limit: 1000, ...(cursor ? { cursor } : {}) });
    out.push(...page.jobs.filter((j) => j.id.startsWith(`${name}-`)));
    cursor = page.cursor;
  } while (cursor);
  return out;
}

describe('schedules, 3 node processes, lease TTL 1 s', () => {
  let c: LocalCluster;
  let nc: NatsConnection;
  withCluster({ nodes: 3 }, (fx) => ({ c, nc } = fx));

  test('every second for 8 s across two leader kills: each tick submitted exactly once, none missed', async () => {
    const added = await callApi(nc, n, 'schedules.add', { name: 'beat', cron: '* * * * * *', job: { type: 'noop', priority: 7 } });
    assert.equal(added.paused, false);
    assert.ok(added.nextTickAt! > added.createdAt && added.nextTickAt! - added.createdAt <= 1_000);
    for (let k = 0; k < 2; k++) {
      await sleep(2_500);
      const s = await waitForStatus(c.urls, (x) => x.leader !== null && x.nodes.length >= 2);
      const leader = c.nodes.find((p) => p.id === s.leader!.nodeId && p.running)!;
      await leader.kill();
      await waitForStatus(c.urls, (x) => x.leader !== null && x.leader.nodeId !== leader.id, { timeoutMs: 10_000 });
      c.addNode(leader.id); // it comes back, as a supervisor would restart it
    }
    await sleep(2_500);
    const paused = await callApi(nc, n, 'schedules.pause', { name: 'beat' });
    assert.equal(paused.paused, true);
    assert.equal(paused.nextTickAt, null);
    const last = paused.lastTickAt!;
    // Submitted before the pause: wait until each has run, then look at the whole series.
    await until('every tick job finished', async () => (await jobsOf(nc, 'beat')).every((j) => j.state === 'succeeded'), 15_000);
    const ticks = (await jobsOf(nc, 'beat')).map((j) => Number(j.id.slice('beat-'.length))).sort((a, b) => a - b);
    assert.ok(ticks.length >= 7, `${ticks.length} ticks in ~8 s`);
    assert.equal(ticks.at(-1), last, 'the last tick is the one the schedule says');
    assert.ok(ticks[0]! > added.createdAt && ticks[0]! - added.createdAt <= 1_000, 'the first tick is the first after it was added');
    const gaps = ticks.slice(1).map((t, i) => t - ticks[i]!);
    assert.deepEqual([...new Set(gaps)], [1_000], `one job per second, none missed, none twice: ${ticks.join(', ')}`);
    const listed = (await callApi(nc, n, 'schedules.list')).schedules.find((s) => s.name === 'beat')!;
    assert.equal(listed.fired, ticks.length, 'fired counts each tick once');
    // Paused: nothing more.
    await sleep(1_500);
    assert.equal((await jobsOf(nc, 'beat')).length, ticks.length);
    const resumed = await callApi(nc, n, 'schedules.resume', { name: 'beat' });
    assert.ok(resumed.lastTickAt! >= Date.now() - 1_000, 'the ticks that passed while paused are not submitted');
    assert.deepEqual(await callApi(nc, n, 'schedules.remove', { name: 'beat' }), { name: 'beat', removed: true });
    assert.deepEqual(await callApi(nc, n, 'schedules.remove', { name: 'beat' }), { name: 'beat', removed: false });
  });

  test('a bad expression, zone, name or input is 400; a taken name 409 unless replaced; a zone moves the tick', async () => {
    const job = { type: 'noop' };
    await assert.rejects(callApi(nc, n, 'schedules.add', { name: 'x', cron: 'every day', job }), /cron 'every day'.*five, six, or seven/);
    await assert.rejects(callApi(nc, n, 'schedules.add', { name: 'x', cron: '0 3 * * *', timezone: 'Mars/Base', job }), /Mars\/Base/);
    await assert.rejects(callApi(nc, n, 'schedules.add', { name: 'no spaces', cron: '0 3 * * *', job }), /letters, digits/);
    await assert.rejects(
      callApi(nc, n, 'schedules.add', { name: 'x', cron: '0 3 * * *', job: { type: 'sleep', input: { ms: 'long' } } }),
      /input does not match job type 'sleep'/,
    );
    const utc = await callApi(nc, n, 'schedules.add', { name: 'nightly', cron: '0 3 * * *', job });
    assert.equal(new Date(utc.nextTickAt!).getUTCHours(), 3);
    await assert.rejects(callApi(nc, n, 'schedules.add', { name: 'nightly', cron: '0 3 * * *', job }), /exists/);
    const tokyo = await callApi(nc, n, 'schedules.add', { name: 'nightly', cron: '0 3 * * *', timezone: 'Asia/Tokyo', job, replace: true });
    assert.equal(new Date(tokyo.nextTickAt!).getUTCHours(), 18, '03:00 in Tokyo is 18:00 UTC');
    assert.equal((await callApi(nc, n, 'schedules.list')).schedules.find((s) => s.name === 'nightly')?.timezone, 'Asia/Tokyo');
    await assert.rejects(callApi(nc, n, 'schedules.pause', { name: 'nope' }), /no schedule named 'nope'/);
  });
});
