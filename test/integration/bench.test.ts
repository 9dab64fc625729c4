// `shoal bench`: a scenario runs in its own process and the report lands in
// --out (table, samples, chart); an unknown scenario is a clear error.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shoalCommand } from '../../harness/spawn.ts';

const shoal = (...args: string[]) => {
  const [cmd, argv] = shoalCommand('node', args);
  return spawnSync(cmd, argv, { encoding: 'utf8', timeout: 180_000 });
};

describe('shoal bench', () => {
  test('failover --quick writes the report, the samples and the chart', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'shoal-bench-')), 'report');
    const r = shoal('bench', 'failover', '--quick', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    assert.match(md, /## Failover: signal → the new leader's first action/);
    assert.match(md, /\| kill -9: median \| \d+ ms \| 1000 ms \(lease TTL\) \|/);
    assert.ok(existsSync(join(out, 'failover-rounds.svg')));
    const rows = readFileSync(join(out, 'samples.csv'), 'utf8').trim().split('\n');
    assert.equal(rows.filter((l) => l.startsWith('failover,kill -9 of the leader,')).length, 3);
  });

  test('an unknown scenario is an error naming the known ones', () => {
    const r = shoal('bench', 'warp-speed');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown scenario warp-speed: choose from overhead, failover, recovery/);
  });
});
