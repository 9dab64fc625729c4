// The one nats-server launcher: version guard, start, kill -9, restart on
// the same port with the same JetStream data.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import '../helpers.ts';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { NatsServerNotFoundError, NatsServerVersionError } from '../../base/errors.ts';
import { findNatsServer, type NatsServer, startServer } from '../../harness/launcher.ts';
import { isSupportedNatsServerVersion, parseNatsServerVersion } from '../../nats/version.ts';

describe('nats-server launcher', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-launcher-test-'));
  let server: NatsServer | undefined;
  after(async () => {
    await server?.[Symbol.asyncDispose]();
    rmSync(dir, { recursive: true, force: true });
  });

  test('parses versions and refuses anything before 2.10', () => {
    assert.equal(parseNatsServerVersion('nats-server: v2.10.27'), '2.10.27');
    assert.equal(parseNatsServerVersion('garbage'), null);
    assert.equal(isSupportedNatsServerVersion('2.9.10'), false);
    assert.equal(isSupportedNatsServerVersion('2.9.21'), false);
    assert.equal(isSupportedNatsServerVersion('2.10.0'), true);
    assert.equal(isSupportedNatsServerVersion('2.11.3'), true);
    assert.equal(isSupportedNatsServerVersion('3.0.0'), true);
  });

  test('an old binary is refused with the reason and the remedy', async () => {
    const fake = join(dir, 'nats-server');
    writeFileSync(fake, '#!/bin/sh\necho "nats-server: v2.9.10"\n');
    chmodSync(fake, 0o755);
    await assert.rejects(findNatsServer({ bin: fake }), (err: unknown) => {
      assert.ok(err instanceof NatsServerVersionError);
      assert.equal(err.version, '2.9.10');
      assert.match(err.message, /compare-and-swap is broken/);
      assert.match(err.message, /npm run setup/);
      return true;
    });
    await assert.rejects(startServer({ bin: fake }), NatsServerVersionError);
    const old = await findNatsServer({ bin: fake, allowOld: true });
    assert.equal(old.version, '2.9.10', 'allowOld bypasses the guard (for the one test that needs an old server)');
  });

  test('a missing binary says where it looked and how to get one', async () => {
    await assert.rejects(findNatsServer({ bin: join(dir, 'nope') }), (err: unknown) => {
      assert.ok(err instanceof NatsServerNotFoundError);
      assert.match(err.message, /nope/);
      assert.match(err.message, /brew install nats-server/);
      return true;
    });
  });

  test('starts a JetStream server; kill -9 then restart keeps its port and data', async () => {
    server = await startServer();
    assert.ok(isSupportedNatsServerVersion((await findNatsServer()).version));
    let nc = await connect({ servers: server.url });
    const kv = await new Kvm(nc).create('launcher_test');
    await kv.put('k', 'v1');
    await nc.close();
    const port = server.port;
    const pid = server.pid;
    await server.kill('SIGKILL');
    assert.equal(server.running, false);
    await server.restart();
    assert.equal(server.port, port);
    assert.notEqual(server.pid, pid);
    nc = await connect({ servers: server.url });
    const e = await (await new Kvm(nc).open('launcher_test')).get('k');
    assert.equal(e?.string(), 'v1');
    await nc.close();
  });
});
