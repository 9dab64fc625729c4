// `shoal machines export`: the JSON of every machine turns back into the same
// machine with a stock createMachine (same states, same transitions), the
// committed diagrams in docs/machines are current, and bad options are clear errors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMachine } from 'xstate';
import { machineGraph, machines, stateIds } from '../../machines/graph.ts';
import { machineJson, machineMermaid } from '../../cli/diagrams.ts';
import { machineFiles, parseFormats, runMachinesExport, withDiagrams } from '../../cli/machines.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const shape = (g: ReturnType<typeof machineGraph>) => ({
  states: stateIds(g.root),
  edges: g.edges.map((e) => `${e.source} --${e.event}${e.guard ? `[${e.guard}]` : ''}--> ${e.targets.join(',')}`).sort(),
});

describe('machines export', () => {
  for (const [name, m] of Object.entries(machines)) {
    test(`${name}: the JSON config round-trips through a stock createMachine (same states and transitions)`, () => {
      const again = createMachine(JSON.parse(machineJson(m)));
      const a = shape(machineGraph(m));
      assert.ok(a.states.length > 5 && a.edges.length > 5);
      assert.deepEqual(shape(machineGraph(again)), a);
    });
  }

  test('the Mermaid diagram names every state and every transition with a target', () => {
    for (const m of Object.values(machines)) {
      const text = machineMermaid(m);
      const g = machineGraph(m);
      for (const id of stateIds(g.root).slice(1)) assert.match(text, new RegExp(`as ${id.replaceAll('.', '_')}\\b`), id);
      const arrows = text.split('\n').filter((l) => l.includes(' --> ') && !l.includes('[*]') || l.includes('note right of')).length;
      assert.equal(arrows, g.edges.reduce((n, e) => n + e.targets.length, 0));
    }
  });

  test('the committed docs/machines files are current (regenerate: npm run machines)', () => {
    const stale: string[] = [];
    for (const [file, text] of machineFiles(parseFormats('all'))) {
      const path = join(root, 'docs', 'machines', file);
      if (!existsSync(path) || readFileSync(path, 'utf8') !== text) stale.push(file);
    }
    assert.deepEqual(stale, [], 'run `npm run machines` and commit docs/machines');
  });

  test("docs/design.md's diagrams are current and show every machine (regenerate: npm run machines)", () => {
    const design = readFileSync(join(root, 'docs', 'design.md'), 'utf8');
    for (const name of Object.keys(machines)) assert.ok(design.includes(`<!-- machine:${name} -->`), name);
    assert.ok(withDiagrams(design) === design, 'run `npm run machines` and commit docs/design.md');
    assert.notEqual(withDiagrams(design.replace('stateDiagram-v2', 'stale')), design.replace('stateDiagram-v2', 'stale'));
  });

  test('an unknown --format and an unwritable --out are clear errors', () => {
    assert.throws(() => parseFormats('json,svg'), /unknown --format svg: choose json, ts, mermaid, dot or all/);
    // (Not /proc: Node 20's recursive mkdir never returns there.)
    const file = join(mkdtempSync(join(tmpdir(), 'shoal-export-')), 'a-file');
    writeFileSync(file, '');
    assert.throws(() => runMachinesExport({ format: 'json', out: join(file, 'sub') }), /cannot create --out .*a-file\/sub: ENOTDIR/);
  });
});
