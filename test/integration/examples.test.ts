// The examples as a user runs them: the first job module under `shoal node`,
// and the systemd unit's and the Kubernetes manifest's command lines with
// their probes, each stopped the way systemd and Kubernetes stop a service
// (SIGTERM, then the unit's or pod's grace). examples/quickstart/app.ts runs
// in package.test.ts, from the installed package.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { freePort, type NatsServer, startServer } from '../../harness/launcher.ts';
import { shoalCommand } from '../../harness/spawn.ts';
import { waitForReady } from '../../harness/local.cluster.ts';
import { callApi } from '../../nats/client.ts';
import { names } from '../../nats/subjects.ts';
import { until } from '../helpers.ts';

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');
const n = names();

/** Runs `shoal <args>` in examples/ as its service manager would; resolves with its exit once it stops. */
function runShoal(args: string[], env: Record<string, string>) {
  const [cmd, argv] = shoalCommand('node', args);
  const child = spawn(cmd, argv, { cwd: examples, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b));
  child.stderr.on('data', (b: Buffer) => (output += b));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

async function probe(port: number, path: string): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
  } catch {
    return 0;
  }
}

/** Start it, wait until its readiness probe says 200, check liveness, stop it with SIGTERM: it drains and exits 0 within `graceS`. */
async function serviceLifecycle(
  args: string[],
  env: Record<string, string>,
  port: number,
  probes: { live: string; ready: string },
  graceS: number,
) {
  const p = runShoal(args, env);
  try {
    await until('its readiness probe answers 200', async () => (await probe(port, probes.ready)) === 200, 20_000);
    assert.equal(await probe(port, probes.live), 200);
    const stopAt = Date.now();
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.output());
    assert.ok(Date.now() - stopAt < graceS * 1000, `stopped within its ${graceS} s grace`);
    assert.match(p.output(), /SIGTERM: draining/);
  } finally {
    p.child.kill('SIGKILL');
  }
}

describe('examples', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  before(async () => {
    server = await startServer();
    nc = await connect({ servers: server.url });
  });
  after(async () => {
    await nc?.close();
    await server?.stop();
  });

  test('jobs.mjs under shoal node: greet checks its input at submit, count checkpoints', async () => {
    const node = runShoal(['node', '--nats', server.url, '--id', 'ex1', '--jobs', './jobs.mjs'], {});
    try {
      await waitForReady([server.url], 1, { timeoutMs: 20_000 });
      const { id } = await callApi(nc, n, 'jobs.submit', { type: 'greet', input: { name: 'Ada' } });
      assert.deepEqual((await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 10_000 })).result, { greeting: 'Hello, Ada!' });
      await assert.rejects(callApi(nc, n, 'jobs.submit', { type: 'greet', input: {} }), /input\.name/);
      const c = await callApi(nc, n, 'jobs.submit', { type: 'count', input: { to: 5 } });
      const done = await callApi(nc, n, 'jobs.wait', { id: c.id, timeoutMs: 10_000 });
      assert.deepEqual(done.result, { counted: 5, resumedFrom: 0 });
      assert.ok(done.checkpointedAt !== null);
    } finally {
      node.child.kill('SIGTERM');
      await node.exited;
    }
  });

  test("the systemd unit's ExecStart runs a node that answers its probes and stops cleanly on SIGTERM", async () => {
    const unit = readFileSync(join(examples, 'shoal-worker.service'), 'utf8');
    const exec = /^ExecStart=.*?\bshoal (.*)$/m.exec(unit)![1]!.split(/\s+/);
    const grace = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)![1]);
    const port = await freePort();
    const args = exec.map((a) => (a === '%H' ? 'sd-1' : a === '9464' ? String(port) : a));
    assert.equal(/^Environment=NATS_URL=(.*)$/m.exec(unit)?.[1], 'nats://127.0.0.1:4222');
    await serviceLifecycle(args, { NATS_URL: server.url }, port, { live: '/healthz', ready: '/readyz' }, grace);
  });

  test("the Kubernetes manifest's container runs a node whose liveness and readiness probes answer, and drains on SIGTERM", async () => {
    const yaml = readFileSync(join(examples, 'kubernetes.yaml'), 'utf8');
    const args = JSON.parse(/^\s*args: (\[.*\])$/m.exec(yaml)![1]!) as string[];
    assert.deepEqual(JSON.parse(/^\s*command: (\[.*\])$/m.exec(yaml)![1]!), ['npx', '--no-install', 'shoal']);
    const live = /livenessProbe:\s*\n\s*httpGet: \{ path: (\S+),/.exec(yaml)![1]!;
    const ready = /readinessProbe:\s*\n\s*httpGet: \{ path: (\S+),/.exec(yaml)![1]!;
    const grace = Number(/terminationGracePeriodSeconds: (\d+)/.exec(yaml)![1]);
    const port = await freePort();
    const podArgs = args.map((a) => (a === '$(POD_NAME)' ? 'shoal-worker-abc12' : a === '9464' ? String(port) : a));
    await serviceLifecycle(podArgs, { NATS_URL: server.url }, port, { live, ready }, grace);
  });
});
