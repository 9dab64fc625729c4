// The folder layout as a test: the one place the folder list and the arrows
// live. Imports go one way, from tooling down to the pure core:
//
//   bench → cli → chaos, inspector, training → harness, node → nats → store → base
//                                                          ↘ policies → machines → api (types)
//
// machines/ stays pure (xstate only; the API contract's types are erased), the
// contract in api/ needs zod alone (a client can take it without the runtime),
// no file imports another that imports it back, and no file is over 400 lines.
// Reads the sources as text.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Every source folder, what it holds, and the project folders it may import from (besides itself). */
const folders: Record<string, { holds: string; may: string[] }> = {
  api: { holds: 'the public API contract: zod schemas of every request, reply and the job record', may: [] },
  machines: { holds: 'pure XState machines and the pure rules beside them', may: ['api'] },
  policies: { holds: 'placement policies: scoring (heuristic, ONNX), fairness, preemption, requirements', may: ['machines', 'api'] },
  base: { holds: 'what every layer shares: defaults, the clock, error classes', may: [] },
  store: {
    holds: 'storage ports and their KV implementations: bucket, job store, checkpoints, leases, codec',
    may: ['base', 'machines', 'api'],
  },
  nats: {
    holds: 'NATS wiring: connect, bootstrap, subjects, API service and client, placement transport, events, roles',
    may: ['base', 'store', 'machines', 'policies', 'api'],
  },
  node: {
    holds: "the node runtime: process, wiring, job runner, job index, the leader's duties (node/leader/)",
    may: ['base', 'store', 'nats', 'machines', 'policies', 'api'],
  },
  harness: {
    holds: 'starting and watching real processes: nats-server launcher, node spawner, local cluster',
    may: ['base', 'store', 'nats', 'machines', 'api'],
  },
  training: { holds: "the learned scorer's trainer and the cluster model it trains on", may: ['policies', 'machines', 'api'] },
  inspector: { holds: "the live inspector's server and web page", may: ['base', 'store', 'nats', 'node', 'machines', 'api', 'chaos'] },
  chaos: {
    holds: 'fault schedules, the simulation and real-process runs, the history checker',
    may: ['base', 'store', 'nats', 'node', 'machines', 'policies', 'harness', 'training', 'api'],
  },
  sdk: {
    holds: "the package's public entries: shoal/client, shoal/worker and the root",
    may: ['base', 'store', 'nats', 'node', 'machines', 'policies', 'api'],
  },
  cli: {
    holds: 'the shoal command',
    may: ['base', 'store', 'nats', 'node', 'machines', 'policies', 'harness', 'training', 'inspector', 'chaos', 'api'],
  },
  bench: {
    holds: 'benchmarks (not tests)',
    may: ['base', 'store', 'nats', 'node', 'machines', 'policies', 'harness', 'training', 'inspector', 'chaos', 'cli', 'api'],
  },
};
const allowed: Record<string, string[]> = Object.fromEntries(Object.entries(folders).map(([k, v]) => [k, v.may]));
/** Packages a folder may import; undefined: any. */
const packages: Record<string, RegExp | undefined> = {
  machines: /^xstate(\/|$)/,
  api: /^zod(\/|$)/,
  base: /^$/,
};
/** Folders another may import only types from (erased at run time). */
const typeOnly: Record<string, string[]> = { machines: ['api'] };

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

/** Imports with `import type` (erased): the specifiers. */
function typeImportsOf(text: string): Set<string> {
  return new Set([...text.matchAll(/(?:^|\n)\s*import\s+type\s[^'";]*?from\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!));
}

function folderOf(file: string): string {
  return relative(root, file).split(/[\\/]/)[0]!;
}

/** The project's manifests (version, Deno tasks): anyone may read them. */
const manifests = ['package.json', 'deno.json'];

describe('layout', () => {
  const files = Object.keys(allowed).filter((d) => existsSync(join(root, d))).flatMap((d) => sources(join(root, d)));

  test('every top-level folder of source is in the list, and every listed folder exists', () => {
    const onDisk = readdirSync(root).filter((f) =>
      !f.startsWith('.') && !['node_modules', 'dist', 'test', 'docs', 'scripts', 'bin', 'examples'].includes(f) &&
      statSync(join(root, f)).isDirectory() && sources(join(root, f)).length > 0
    );
    assert.deepEqual(onDisk.sort(), Object.keys(folders).filter((d) => existsSync(join(root, d))).sort());
  });

  test('every import goes along an allowed arrow between folders', () => {
    const bad: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      const text = readFileSync(file, 'utf8');
      const types = typeImportsOf(text);
      for (const spec of importsOf(text)) {
        if (spec.startsWith('.')) {
          const to = folderOf(resolve(dirname(file), spec));
          if (to !== from && !manifests.includes(to) && !allowed[from]!.includes(to)) {
            bad.push(`${relative(root, file)} imports ${spec} (${from} → ${to})`);
          } else if (typeOnly[from]?.includes(to) && !types.has(spec)) {
            bad.push(`${relative(root, file)} imports values from ${spec} (${from} may import only types from ${to})`);
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

  test('no import cycle between files', () => {
    const graph = new Map(files.map((f) => [
      f,
      importsOf(readFileSync(f, 'utf8')).filter((s) => s.startsWith('.')).map((s) => resolve(dirname(f), s)),
    ]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].map((x) => relative(root, x)).join(' → '));
        return;
      }
      state.set(f, 'open');
      for (const g of graph.get(f) ?? []) visit(g, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    assert.deepEqual(cycles, []);
  });

  test('shoal/client loads the NATS client and zod only (no CBOR, no node runtime, no XState)', () => {
    const reached = new Set<string>();
    const seen = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      // What runs: type-only imports and re-exports are erased.
      const erased = new Set([...text.matchAll(/(?:^|\n)\s*(?:import|export)\s+type\s[^'";]*?from\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!));
      for (const spec of importsOf(text)) {
        if (erased.has(spec)) continue;
        if (spec.startsWith('.')) walk(resolve(dirname(file), spec));
        else if (!spec.startsWith('node:')) reached.add(spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/'));
      }
    };
    walk(join(root, 'sdk', 'client.ts'));
    // @opentelemetry/api only when the application has it (imported when first asked for, a miss is no error).
    assert.deepEqual([...reached].sort(), ['@nats-io/transport-node', '@opentelemetry/api', 'zod']);
    assert.ok(![...seen].some((f) => /[\\/](machines|store[\\/]codec)/.test(f)), 'no machine and no CBOR codec on the way');
  });

  test('no source file is over 400 lines', () => {
    const long = files.map((f) => ({ f: relative(root, f), n: readFileSync(f, 'utf8').split('\n').length })).filter((x) => x.n > 400);
    assert.deepEqual(long, []);
  });
});
