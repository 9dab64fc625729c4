// `--json` on every command: the command tree says so, and a command run with
// it prints only JSON on stdout (its words go to stderr), while without it
// stdout has the words and no JSON.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { program } from '../../cli/program.ts';
import { shoalCommand } from '../../harness/spawn.ts';

function shoal(args: string[]) {
  const [cmd, argv] = shoalCommand('node', args);
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('--json', () => {
  test('every command takes --json', () => {
    const missing: string[] = [];
    const walk = (c: Command, path: string[]) => {
      if (c.commands.length === 0 && !c.options.some((o) => o.long === '--json')) missing.push(path.join(' '));
      for (const s of c.commands) walk(s, [...path, s.name()]);
    };
    walk(program(), []);
    assert.deepEqual(missing, []);
  });

  test('with --json stdout is one JSON document and the words go to stderr; without, stdout is words', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-json-'));
    const withJson = shoal(['machines', 'export', '--format', 'json', '--out', join(dir, 'a'), '--json']);
    assert.equal(withJson.code, 0, withJson.stderr);
    const out = JSON.parse(withJson.stdout) as { files: string[] };
    assert.deepEqual(out.files.map((f) => f.slice(join(dir, 'a').length + 1)).sort(), readdirSync(join(dir, 'a')).sort());
    assert.equal(out.files.length, 4);
    for (const f of out.files) assert.ok(withJson.stderr.includes(f), `${f} said on stderr`);

    const plain = shoal(['machines', 'export', '--format', 'json', '--out', join(dir, 'b')]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.throws(() => JSON.parse(plain.stdout));
    assert.equal(plain.stdout.trim().split('\n').length, 4);
  });
});
