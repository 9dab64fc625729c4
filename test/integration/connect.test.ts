// How `shoal node` and the CLI authenticate, against real nats-servers: TLS
// with a CA of our own (openssl), user + password from flags, an NKEY seed from
// the environment, a token, and a .creds file on a server in operator mode
// (decentralized auth: JWTs made here as nsc would); without the CA or with a
// wrong secret the command fails and says so.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import '../helpers.ts';
import { nkeys } from '@nats-io/transport-node';
import { waitForReady } from '../../harness/local.cluster.ts';
import { type NatsServer, startServer } from '../../harness/launcher.ts';
import { type NodeProcess, shoalCommand, spawnNode } from '../../harness/spawn.ts';

const run = promisify(execFile);
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

/** `shoal <args>` in a process of its own; its output, or the error with its output. */
async function shoal(args: string[], env: Record<string, string> = {}): Promise<{ ok: boolean; out: string }> {
  const [cmd, argv] = shoalCommand('node', args);
  try {
    const r = await run(cmd, argv, { env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 30_000 });
    return { ok: true, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** A CA and a server certificate for 127.0.0.1 it signed (and localhost: nats.js checks an IP URL's certificate against that name). */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const p = (f: string) => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ssl = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  };
  ssl(['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=shoal-test-ca']);
  ssl(['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(p('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl([
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p('server.pem'),
    '-days',
    '2',
    '-extfile',
    p('san.ext'),
  ]);
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

describe('TLS, user + password and NKEY', { skip: hasOpenssl ? false : 'no openssl to make certificates' }, () => {
  let dir: string;
  let server: NatsServer;
  let node: NodeProcess;
  let ca: string;
  let seedFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-tls-'));
    const certs = makeCertificates(dir);
    ca = certs.ca;
    const user = nkeys.createUser();
    seedFile = join(dir, 'user.nk');
    writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()), { mode: 0o600 });
    server = await startServer({
      config: [
        `tls { cert_file: "${certs.cert}", key_file: "${certs.key}" }`,
        `authorization { users: [ { user: "worker", password: "s3cret" }, { nkey: "${user.getPublicKey()}" } ] }`,
      ].join('\n'),
    });
    node = spawnNode({ id: 't1', nats: server.url, leaseTtlMs: 1000, args: ['--tls-ca', ca, '--user', 'worker', '--password', 's3cret'] });
    await node.waitForLine(/node: .* → running\.member\.ready/);
  });
  after(async () => {
    await node?.stop();
    await server?.[Symbol.asyncDispose]();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a node with --tls-ca, --user and --password joins; the CLI with NATS_CA and NATS_NKEY sees it', async () => {
    const r = await shoal(['status', '--nats', server.url], { NATS_CA: ca, NATS_NKEY: seedFile });
    assert.ok(r.ok, r.out);
    assert.match(r.out, /t1 \*\s+│ ready/);
  });

  test('without the CA, or with a wrong password, the command fails and says why', async () => {
    const noCa = await shoal(['status', '--nats', server.url, '--user', 'worker', '--password', 's3cret']);
    assert.equal(noCa.ok, false);
    assert.match(noCa.out, /cannot connect to NATS at .*(certificate|self.signed|CERT)/i);
    const wrong = await shoal(['status', '--nats', server.url, '--tls-ca', ca, '--user', 'worker', '--password', 'nope']);
    assert.equal(wrong.ok, false);
    assert.match(wrong.out, /authorization violation/i);
  });
});

describe('a token', () => {
  let server: NatsServer;
  let node: NodeProcess;

  before(async () => {
    server = await startServer({ config: 'authorization { token: "t0ken-for-test" }' });
    node = spawnNode({ id: 'k1', nats: server.url, leaseTtlMs: 1000, env: { NATS_TOKEN: 't0ken-for-test' } });
    await waitForReady({ servers: [server.url], token: 't0ken-for-test' }, 1);
  });
  after(async () => {
    await node?.stop();
    await server?.[Symbol.asyncDispose]();
  });

  test('a node with NATS_TOKEN joins; the CLI with --token sees it, without it is refused', async () => {
    const r = await shoal(['status', '--nats', server.url, '--token', 't0ken-for-test']);
    assert.ok(r.ok, r.out);
    assert.match(r.out, /k1 \*/);
    const none = await shoal(['status', '--nats', server.url]);
    assert.equal(none.ok, false);
    assert.match(none.out, /authorization violation/i);
  });
});

type KeyPair = ReturnType<typeof nkeys.createOperator>;
const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');

/** A NATS JWT (v2) signed by `issuer`, as nsc writes them. */
function natsJwt(issuer: KeyPair, subject: KeyPair, nats: Record<string, unknown>): string {
  const header = b64u(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const body = { iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), sub: subject.getPublicKey(), name: 'shoal', nats };
  const jti = createHash('sha256').update(JSON.stringify(body)).digest('base64url');
  const payload = b64u(JSON.stringify({ jti, ...body }));
  return `${header}.${payload}.${b64u(issuer.sign(new TextEncoder().encode(`${header}.${payload}`)))}`;
}

describe('decentralized auth: a .creds file on a server in operator mode', () => {
  let dir: string;
  let server: NatsServer;
  let node: NodeProcess;
  let creds: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-creds-'));
    const [op, sys, acc, user] = [nkeys.createOperator(), nkeys.createAccount(), nkeys.createAccount(), nkeys.createUser()];
    const unlimited = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
    const opJwt = natsJwt(op, op, { type: 'operator', version: 2 });
    const sysJwt = natsJwt(op, sys, { type: 'account', version: 2, limits: unlimited });
    // JetStream for the account: storage limits set (-1: unlimited).
    const accJwt = natsJwt(op, acc, {
      type: 'account',
      version: 2,
      limits: { ...unlimited, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
    });
    const userJwt = natsJwt(acc, user, { type: 'user', version: 2, pub: {}, sub: {}, subs: -1, data: -1, payload: -1 });
    creds = join(dir, 'node.creds');
    writeFileSync(
      creds,
      `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n` +
        `-----BEGIN USER NKEY SEED-----\n${new TextDecoder().decode(user.getSeed())}\n------END USER NKEY SEED------\n`,
      { mode: 0o600 },
    );
    server = await startServer({
      config: [
        `operator: "${opJwt}"`,
        `system_account: ${sys.getPublicKey()}`,
        'resolver: MEMORY',
        `resolver_preload: { ${acc.getPublicKey()}: "${accJwt}", ${sys.getPublicKey()}: "${sysJwt}" }`,
      ].join('\n'),
    });
    node = spawnNode({ id: 'c1', nats: server.url, leaseTtlMs: 1000, args: ['--creds', creds] });
    await node.waitForLine(/node: .* → running\.member\.ready/);
  });
  after(async () => {
    await node?.stop();
    await server?.[Symbol.asyncDispose]();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a node with --creds joins; the CLI with NATS_CREDS sees it; without credentials it is refused', async () => {
    const r = await shoal(['status', '--nats', server.url], { NATS_CREDS: creds });
    assert.ok(r.ok, r.out);
    assert.match(r.out, /c1 \*/);
    const none = await shoal(['status', '--nats', server.url]);
    assert.equal(none.ok, false);
    assert.match(none.out, /authorization violation/i);
  });
});
