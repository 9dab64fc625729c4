// The package build (`npm run build`; `npm pack` runs it as prepack where
// lifecycle scripts run): tsc emits dist/ (JavaScript and .d.ts, `.ts`
// imports rewritten to `.js`), the shipped ONNX model is copied beside its
// loader, and the inspector's page script and statechart layouts are built
// once, so an installed package needs no TypeScript runner, esbuild or elkjs.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pkg from '../package.json' with { type: 'json' };
import { writePageAssets } from '../inspector/assets.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const began = Date.now();

rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
// tsc rewrites `.ts` imports to `.js` in the JavaScript, not in the declarations: the same for those, so any
// TypeScript a user has resolves them.
for (const file of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
  if (!file.endsWith('.d.ts')) continue;
  const path = join(dist, file);
  writeFileSync(path, readFileSync(path, 'utf8').replace(/((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+)\.ts\2/g, '$1$2$3.js$2'));
}
cpSync(join(root, 'policies', 'model'), join(dist, 'policies', 'model'), { recursive: true });
await writePageAssets(join(dist, 'inspector'));
// tsc copies the manifests the sources import (the version, Deno's tasks); the package's own stays the one at the root.
writeFileSync(
  join(dist, 'package.json'),
  `${JSON.stringify({ name: pkg.name, version: pkg.version, type: 'module', private: true }, null, 2)}\n`,
);
console.log(`built dist/ in ${Date.now() - began} ms`);
