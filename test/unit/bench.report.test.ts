// The benchmark report: the Markdown table with ratios and goals, the raw
// samples as CSV and JSON, and charts rendered to SVG by vega in Node.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdfChart, markdown, type ScenarioResult, stripChart, writeReport } from '../../bench/report.ts';

const result: ScenarioResult = {
  scenario: 'overhead',
  title: 'Overhead',
  setup: '3 nodes',
  figures: [
    {
      figure: 'p50',
      unit: 'ms',
      shoal: 4,
      baseline: { name: 'queue', value: 1 },
      higherIsBetter: false,
      goal: { text: '≤ 2 ms', met: false },
    },
    { figure: 'jobs/s', unit: '/s', shoal: 2500, baseline: { name: 'queue', value: 10_000 }, goal: { text: '≥ 2,000/s', met: true } },
    { figure: 'writes', unit: '', shoal: 3 },
  ],
  samples: { a: [1, 2, 3], b: [4] },
  charts: [cdfChart('cdf', 'latency', { a: [1, 2, 3], b: [4] }), stripChart('strip', 'rounds', 'ms', { kill: [100, 120] })],
  ms: 1234,
};

describe('bench report', () => {
  test('the table gives Shoal, the baseline, the ratio (better is above 1 either way) and the goal', () => {
    const md = markdown([result], 'Machine: test');
    assert.match(md, /\| p50 \| 4 ms \| 1 ms \(queue\) \| 0\.250 \| ≤ 2 ms ✗ \|/);
    assert.match(md, /\| jobs\/s \| 2500 \/s \| 10000 \/s \(queue\) \| 0\.250 \| ≥ 2,000\/s ✓ \|/);
    assert.match(md, /\| writes \| 3 {2}\| {2}\| {2}\| {2}\|/);
    assert.match(md, /!\[latency\]\(cdf\.svg\)/);
  });

  test('writes the report, the samples as CSV and JSON, and each chart as SVG', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-report-'));
    const files = await writeReport(dir, [result], 'Machine: test');
    assert.deepEqual(files, ['report.md', 'samples.json', 'samples.csv', 'cdf.svg', 'strip.svg']);
    assert.equal(readFileSync(join(dir, 'samples.csv'), 'utf8').trim().split('\n').length, 1 + 4);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'samples.json'), 'utf8')).overhead.samples, result.samples);
    for (const f of ['cdf.svg', 'strip.svg']) {
      const svg = readFileSync(join(dir, f), 'utf8');
      assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      assert.ok(svg.includes('<path'), `${f} draws something`);
    }
  });
});
