// `shoal up` as a user runs it: it prints the URL, node ids and pids and the
// leader, stays in the foreground, and on SIGTERM leaves no process behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import '../helpers.ts';
import { spawn, spawnSync } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { shoalCommand } from '../../harness/spawn.ts';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('shoal up: prints URL, nodes with pids and the leader; SIGTERM stops everything it started', async () => {
  // Node flags it does not take itself go to every node (the module's path relative to here).
  const [cmd, args] = shoalCommand('node', [
    'up',
    '--port',
    '0',
    '--nodes',
    '2',
    '--lease-ttl',
    '1000',
    '--jobs',
    'examples/jobs.mjs',
    '--io-slots',
    '2',
  ]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no leader line within 30 s:\n${out}`)), 30_000);
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (/^leader: n\d/m.test(out) && /Try: shoal status/.test(out)) {
          clearTimeout(t);
          resolve();
        }
      });
      child.stderr!.on('data', () => {});
    });
    const url = /^NATS: (\S+)/m.exec(out)?.[1];
    assert.ok(url, out);
    const pids = [...out.matchAll(/^node (n\d): pid (\d+)$/gm)].map((m) => Number(m[2]));
    assert.equal(pids.length, 2, out);
    assert.ok(pids.every(alive));
    const nc = await connect({ servers: url });
    await nc.close();

    // The job commands, as a user types them, against this cluster.
    const shoal = (...a: string[]) => {
      const [c2, a2] = shoalCommand('node', [...a, '--nats', url!]);
      const r = spawnSync(c2, a2, { encoding: 'utf8', timeout: 60_000 });
      return { code: r.status, out: `${r.stdout}${r.stderr}` };
    };
    const sub = shoal('submit', 'primes', '--input', '{"limit":1000}', '--id', 'cli-1', '--wait');
    assert.equal(sub.code, 0, sub.out);
    assert.match(sub.out, /cli-1 {2}succeeded {2}attempt 1 {2}result \{"count":168\}/);
    assert.match(shoal('jobs', '--state', 'succeeded').out, /cli-1.*primes.*succeeded/);
    assert.match(shoal('job', 'cli-1').out, /attempt.*node.*resumed from/s);
    // Created already assigned where a node has room (the dispatcher), queued otherwise.
    assert.match(shoal('submit', 'sleep', '--input', '{"ms":60000}', '--id', 'cli-2').out, /cli-2 {2}(assigned|queued)/);
    assert.match(shoal('cancel', 'cli-2').out, /cli-2 cancelled/);
    assert.match(shoal('retry', 'cli-2').out, /cli-2 → cli-2-r1 {2}(assigned|queued)/, 'a cancelled job runs again as a new job');
    assert.match(shoal('cancel', 'cli-2-r1').out, /cli-2-r1 cancelled/);
    assert.deepEqual(
      shoal('jobs', '--type', 'sleep', '--newest').out.split('\n').filter((l) => /cli-2/.test(l)).map((l) => /(cli-2\S*)/.exec(l)![1]),
      ['cli-2-r1', 'cli-2'],
    );
    // The module given to `up` runs on its nodes.
    assert.match(shoal('submit', 'greet', '--input', '{"name":"Ada"}', '--wait').out, /"greeting":"Hello, Ada!"/);
    const bad = shoal('submit', 'noop', '--input', '{nope');
    assert.equal(bad.code, 1);
    assert.match(bad.out, /--input is not valid JSON/);
    assert.match(shoal('status').out, /succeeded/);
    // The event tail: the job's whole path, in order, and bad flags refused clearly.
    const path = shoal('events', '--job', 'cli-1').out.split('\n').filter((l) => / job /.test(l) && / → /.test(l));
    const states = path.map((l) => / → (\S+) /.exec(l)?.[1]);
    // The dispatcher creates the record already assigned (a node had room).
    assert.deepEqual([...new Set(states)].filter((x) => !x!.startsWith('running')), ['assigned', 'succeeded'], path.join('\n'));
    assert.ok(states.some((x) => x === 'running.computing'), path.join('\n'));
    assert.match(path.at(-1)!, /running\.computing → succeeded \(job\.succeed, attempt 1\) progress 100% result \{"count":168\}/);
    assert.match(shoal('events', '--kind', 'coordinator', '--since', '10m').out, /coordinator .*→ active\.leader/);
    assert.match(shoal('events', '--since', 'yesterday').out, /--since 'yesterday' is not a duration/);

    const [c3, a3] = shoalCommand('node', ['up', '--port', '0', '--bogus-flag']);
    const typo = spawnSync(c3, a3, { encoding: 'utf8', timeout: 30_000 });
    assert.equal(typo.status, 2, 'a usage error');
    assert.match(typo.stderr, /'--bogus-flag' is not a node flag/);

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.deepEqual(pids.filter(alive), [], 'no node process left');
    await assert.rejects(connect({ servers: url, reconnect: false, timeout: 1000 }), 'no nats-server left');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
