// The inspector's page server answers only requests that name an allowed host
// (DNS rebinding) and come from an allowed origin, if any.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostAllowed, hostOf, requestAllowed } from '../../inspector/guard.ts';
import { shoalCommand } from '../../harness/spawn.ts';

/** GET `path` from 127.0.0.1:`port` with these headers: the status code. */
function get(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      res.destroy();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('inspector request guard', () => {
  test('host names: ports and IPv6 brackets removed, lower-cased', () => {
    assert.equal(hostOf('LocalHost:8470'), 'localhost');
    assert.equal(hostOf('[::1]:8470'), '::1');
    assert.equal(hostOf('127.0.0.1'), '127.0.0.1');
    assert.equal(hostOf('::1'), '::1');
  });

  test('loopback names and IP literals pass; a DNS name passes only when allowed', () => {
    for (const h of ['localhost:8470', '127.0.0.1:8470', '[::1]:8470', '10.1.2.3', 'app.localhost']) assert.ok(hostAllowed(h, []), h);
    for (const h of ['attacker.example:8470', 'localhost.attacker.example', '', 'evil']) assert.ok(!hostAllowed(h, []), h);
    assert.ok(hostAllowed('dev-box:8470', ['dev-box']));
    assert.ok(!hostAllowed('dev-box2:8470', ['dev-box']));
  });

  test('an origin must be an http(s) origin of an allowed host', () => {
    assert.ok(requestAllowed({ host: '127.0.0.1:8470' }, []));
    assert.ok(requestAllowed({ host: '127.0.0.1:8470', origin: 'http://127.0.0.1:8470' }, []));
    assert.ok(!requestAllowed({ host: '127.0.0.1:8470', origin: 'https://attacker.example' }, []));
    assert.ok(!requestAllowed({ host: '127.0.0.1:8470', origin: 'null' }, []));
    assert.ok(!requestAllowed({ host: 'rebound.attacker.example:8470' }, []));
    assert.ok(!requestAllowed({}, []));
  });

  test('a real inspector (replaying a file) refuses a rebound host and a foreign origin, serves its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-guard-'));
    const file = join(dir, 'history.json');
    writeFileSync(file, JSON.stringify({ kind: 'shoal-chaos-failure', history: [], violations: [] }));
    const [cmd, argv] = shoalCommand('node', ['inspect', '--replay', file, '--port', '0', '--allow-host', 'dev-box']);
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (b: Buffer) => {
          out += b.toString();
          const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (code) => reject(new Error(`inspect exited ${code}: ${out}`)));
      });
      assert.equal(await get(port, '/', { host: `127.0.0.1:${port}` }), 200);
      assert.equal(await get(port, '/', { host: `localhost:${port}` }), 200);
      assert.equal(await get(port, '/', { host: `dev-box:${port}` }), 200);
      assert.equal(await get(port, '/', { host: `rebound.attacker.example:${port}` }), 403);
      assert.equal(await get(port, '/api/job?id=x', { host: `127.0.0.1:${port}`, origin: 'https://attacker.example' }), 403);
      assert.equal(await get(port, '/api/job?id=x', { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` }), 200);
    } finally {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
