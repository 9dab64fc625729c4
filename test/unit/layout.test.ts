// The folder layout as a test: which folder may import which, so the arrows
// keep going one way (cli/bench → chaos → harness/actors → policies/streams →
// machines) and machines/ stays pure (xstate only). Reads the sources as text.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** For each source folder: the project folders it may import from (besides itself). */
const allowed: Record<string, string[]> = {
  machines: [],
  policies: ['machines'],
  streams: ['machines'],
  actors: ['machines', 'policies', 'streams'],
  harness: ['machines', 'streams'],
  chaos: ['machines', 'policies', 'streams', 'actors', 'harness'],
  cli: ['machines', 'policies', 'streams', 'actors', 'harness', 'chaos'],
  bench: ['machines', 'policies', 'streams', 'actors', 'harness', 'chaos', 'cli'],
};
/** Packages a folder may import; undefined: any. machines/ is pure. */
const packages: Record<string, RegExp | undefined> = {
  machines: /^xstate(\/|$)/,
};

function sources(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (f.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const re =
    /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

function folderOf(file: string): string {
  return relative(root, file).split(/[\\/]/)[0]!;
}

/** The project's manifests (version, Deno tasks): anyone may read them. */
const manifests = ['package.json', 'deno.json'];

describe('layout', () => {
  const files = Object.keys(allowed).flatMap((d) => sources(join(root, d)));

  test('every import goes along an allowed arrow between folders', () => {
    const bad: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        if (spec.startsWith('.')) {
          const to = folderOf(resolve(dirname(file), spec));
          if (to !== from && !manifests.includes(to) && !allowed[from]!.includes(to)) {
            bad.push(`${relative(root, file)} imports ${spec} (${from} → ${to})`);
          }
        } else if (packages[from] && !packages[from]!.test(spec)) {
          bad.push(`${relative(root, file)} imports package ${spec}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  test('the import scanner sees static, side-effect, re-export and dynamic imports', () => {
    const text =
      "import a from './a.ts';\nimport './b.ts';\nexport * from '../c.ts';\nconst d = await import('./d.ts');\nimport {\n  e,\n} from 'e';";
    assert.deepEqual(importsOf(text).sort(), ['../c.ts', './a.ts', './b.ts', './d.ts', 'e']);
  });

  test('no source file is over 400 lines', () => {
    const long = files.map((f) => ({ f: relative(root, f), n: readFileSync(f, 'utf8').split('\n').length })).filter((x) => x.n > 400);
    assert.deepEqual(long, []);
  });
});
