// The package as a user gets it: built and packed, installed into an empty
// project with `--omit=optional` (no ONNX Runtime, no fast-check), its
// command run, `shoal/client` and `shoal/worker` imported from plain Node
// ESM, the README's app (examples/quickstart/app.ts) type-checked against the
// published .d.ts and run against a real nats-server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { sleep } from '../../base/time.ts';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pkg from '../../package.json' with { type: 'json' };
import { type NatsServer, startServer } from '../../harness/launcher.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const npm = (args: string[], cwd: string) =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8', stdio: 'pipe', timeout: 300_000 });

describe('the package, packed and installed into an empty project with --omit=optional', () => {
  let dir: string;
  let app: string;
  let server: NatsServer;
  let tarball: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-pkg-'));
    app = join(dir, 'app');
    cpSync(join(root, 'examples', 'quickstart'), app, { recursive: true });
    for (const f of ['jobs.mjs', 'http-app.mjs']) cpSync(join(root, 'examples', f), join(app, f));
    execFileSync(process.execPath, [join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(root, 'scripts', 'build.ts')], {
      cwd: root,
      stdio: 'pipe',
    });
    npm(['pack', '--pack-destination', dir], root);
    tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    // What a TypeScript user has beside: zod for schemas, the Node types, TypeScript itself is the project's own.
    npm(['install', tarball, 'zod', '@types/node@20', '--omit=optional'], app);
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('ships compiled JavaScript and declarations, no tests, sources or bench results; the optional parts are absent', () => {
    const installed = join(app, 'node_modules', 'shoal');
    assert.ok(existsSync(join(installed, 'dist', 'sdk', 'client.js')));
    assert.ok(existsSync(join(installed, 'dist', 'sdk', 'worker.d.ts')));
    assert.ok(existsSync(join(installed, 'dist', 'inspector', 'page', 'app.js')), 'the inspector page is prebuilt');
    for (const absent of ['test', 'bench', 'cli', 'node', 'dist/bench', 'dist/test']) {
      assert.ok(!existsSync(join(installed, absent)), `${absent} is not shipped`);
    }
    for (const optional of ['onnxruntime-node', 'fast-check', 'esbuild', 'elkjs', 'vega', 'tsx']) {
      assert.ok(!existsSync(join(app, 'node_modules', optional)), `${optional} is not installed`);
    }
  });

  test('npx shoal --version and --help run from the compiled command', () => {
    assert.equal(execFileSync('npx', ['shoal', '--version'], { cwd: app, encoding: 'utf8' }).trim(), pkg.version);
    assert.match(execFileSync('npx', ['shoal', '--help'], { cwd: app, encoding: 'utf8' }), /submit/);
    const chaos = spawnSync('npx', ['shoal', 'chaos', '--sim', '--runs', '1'], { cwd: app, encoding: 'utf8' });
    assert.equal(chaos.status, 1);
    assert.match(chaos.stderr, /needs the optional dependency fast-check/);
  });

  test('shoal/client, shoal/worker and the root import from plain Node ESM', () => {
    const out = execFileSync(process.execPath, [
      '--input-type=module',
      '-e',
      "const c = await import('shoal/client'); const w = await import('shoal/worker'); const r = await import('shoal');" +
      'console.log([typeof c.createClient, typeof w.Worker.start, typeof w.defineJob, typeof w.NonRetryableError, ' +
      'typeof c.JobFailedError, typeof r.createClient, typeof r.Worker].join())',
    ], { cwd: app, encoding: 'utf8' });
    assert.equal(out.trim(), Array(7).fill('function').join());
  });

  test("the README's app type-checks against the published declarations and runs against a real nats-server", () => {
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          types: ['node'],
          rootDir: '.',
          outDir: 'out',
        },
        include: ['app.ts'],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { encoding: 'utf8' });
    assert.equal(tsc.status, 0, `tsc:\n${tsc.stdout}${tsc.stderr}`);
    const run = spawnSync(process.execPath, ['out/app.js'], {
      cwd: app,
      encoding: 'utf8',
      env: { ...process.env, NATS_URL: server.url },
      timeout: 60_000,
    });
    assert.equal(run.status, 0, `app:\n${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /progress running 0\.25/);
    assert.match(run.stdout, /result \{"url":"https:\/\/example\.com\/cat\.png","width":256,"bytes":1234\} width=256/);
    assert.match(run.stdout, /failed failed after 1 attempt\(s\): this input can never work/);
    assert.match(run.stdout, /stopped\n?$/);
  });

  test('the installed shoal node runs a job module, and the HTTP example submits to it and answers with the result', async () => {
    const env = { ...process.env, NATS_URL: server.url, PORT: '0' };
    // The installed command itself (npx would stand between: a signal to it does not reach the node).
    const bin = join(app, 'node_modules', '.bin', 'shoal');
    const node = spawn(bin, ['node', '--id', 'pkg-1', '--jobs', './jobs.mjs', '--policy', 'heuristic'], { cwd: app, env });
    const http = spawn(process.execPath, ['http-app.mjs'], { cwd: app, env });
    let out = '';
    node.stderr.on('data', (b: Buffer) => (out += b));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        http.stdout.on('data', (b: Buffer) => {
          const m = /listening on (\d+)/.exec(String(b));
          if (m) resolve(Number(m[1]));
        });
        http.once('exit', (code) => reject(new Error(`the HTTP app exited (${code})`)));
      });
      const post = async (path: string, body: string) => {
        for (;;) {
          const r = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body });
          if (r.status !== 503) return { status: r.status, body: await r.json() as Record<string, unknown> };
          await sleep(200); // the node is still joining
        }
      };
      const ok = await post('/jobs/greet', '{"name":"Ada"}');
      assert.equal(ok.status, 200, JSON.stringify(ok.body) + out);
      assert.deepEqual(ok.body.result, { greeting: 'Hello, Ada!' });
      const bad = await post('/jobs/greet', '{}');
      assert.equal(bad.status, 400);
      assert.match(String(bad.body.error), /input\.name/);
      assert.equal((await post('/jobs/fail', '{"message":"no"}')).status, 502);
    } finally {
      http.kill('SIGTERM');
      node.kill('SIGTERM');
      await Promise.all([once(http, 'exit'), once(node, 'exit')]);
    }
  });
});
