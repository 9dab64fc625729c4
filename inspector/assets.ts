// The inspector page's two built assets: its script (the page's TypeScript
// bundled by esbuild) and the statechart layouts of Shoal's machines (by
// elkjs). Both depend only on the source, so the package build writes them
// once (`npm run build`, scripts/build.ts) and an installed package reads
// them; a clone builds them in memory on start. esbuild and elkjs are
// development dependencies for that reason.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineGraph, machines } from '../machines/graph.ts';
import type { ChartLayout } from './layout.ts';
import { type Kind, kinds } from './model.ts';

const here = dirname(fileURLToPath(import.meta.url));
const built = { script: join(here, 'page', 'app.js'), charts: join(here, 'page', 'charts.json') };

export type PageAssets = { script: string; charts: Record<Kind, ChartLayout> };

async function buildAssets(): Promise<PageAssets> {
  const [{ build }, { layoutMachine }] = await Promise.all([import('esbuild'), import('./layout.ts')]);
  const r = await build({
    entryPoints: [join(here, 'page', 'app.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
  });
  const charts = {} as Record<Kind, ChartLayout>;
  for (const k of kinds) charts[k] = await layoutMachine(machineGraph(machines[k]));
  return { script: r.outputFiles[0]!.text, charts };
}

/** The built assets of an installed package, else built now from the source (a clone). */
export async function pageAssets(): Promise<PageAssets> {
  if (existsSync(built.script) && existsSync(built.charts)) {
    return { script: readFileSync(built.script, 'utf8'), charts: JSON.parse(readFileSync(built.charts, 'utf8')) };
  }
  try {
    return await buildAssets();
  } catch (err) {
    throw new Error(`cannot build the inspector page (${(err as Error).message}); a clone needs its dev dependencies (npm install)`, {
      cause: err,
    });
  }
}

/** Writes the assets beside the compiled server in `outDir` (the package build). */
export async function writePageAssets(outDir: string): Promise<void> {
  const a = await buildAssets();
  mkdirSync(join(outDir, 'page'), { recursive: true });
  writeFileSync(join(outDir, 'page', 'app.js'), a.script);
  writeFileSync(join(outDir, 'page', 'charts.json'), JSON.stringify(a.charts));
}
