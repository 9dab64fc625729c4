// `shoal bench [scenario…] [--quick] [--out DIR]`: runs each scenario in a
// process of its own, one after another, with a progress bar, then writes the
// report (report.md, samples.json, samples.csv, charts as SVG) into DIR.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { findNatsServer } from '../harness/launcher.ts';
import { type ScenarioResult, writeReport } from './report.ts';
import { type ScenarioName, scenarios } from './scenarios.ts';

export const scenarioNames = Object.keys(scenarios) as ScenarioName[];
/** What `shoal bench` runs without names: all but `scale`, `memory` (minutes each on their own) and `stage0` (the message costs); run those by name. */
export const defaultScenarios = scenarioNames.filter((s) => s !== 'scale' && s !== 'memory' && s !== 'stage0');

function runScenario(name: ScenarioName, quick: boolean, bar: cliProgress.SingleBar): Promise<ScenarioResult> {
  const file = join(mkdtempSync(join(tmpdir(), 'shoal-bench-')), `${name}.json`);
  const script = fileURLToPath(new URL('./scenario.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), script, name, file, ...(quick ? ['--quick'] : [])], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let tail = '';
  child.stderr!.on('data', (b: Buffer) => {
    for (const line of b.toString().split('\n')) {
      const m = /^progress (\d+) (\d+) (.*)$/.exec(line);
      if (m) {
        bar.setTotal(Number(m[2]));
        bar.update(Number(m[1]), { what: `${name}: ${m[3]}` });
      } else if (line) tail = `${tail}${line}\n`.slice(-4000);
    }
  });
  return new Promise((resolveResult, reject) => {
    child.once('exit', (code) => {
      if (code === 0) resolveResult(JSON.parse(readFileSync(file, 'utf8')) as ScenarioResult);
      else reject(new Error(`scenario ${name} failed (exit ${code}):\n${tail}`));
    });
  });
}

export async function runSuite(options: { scenarios: ScenarioName[]; quick: boolean; out: string }): Promise<string[]> {
  const bin = await findNatsServer();
  const machine = `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
    `Node ${process.versions.node}; nats-server ${bin.version}; ${new Date().toISOString()}; ${options.quick ? '--quick' : 'full run'}.`;
  const bar = new cliProgress.SingleBar(
    { format: '{bar} {value}/{total} {what}', hideCursor: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1, 0, { what: '' });
  const results: ScenarioResult[] = [];
  try {
    for (const name of options.scenarios) results.push(await runScenario(name, options.quick, bar));
  } finally {
    bar.stop();
  }
  const dir = resolve(options.out);
  return (await writeReport(dir, results, machine)).map((f) => join(dir, f));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const outAt = args.indexOf('--out');
  const out = outAt >= 0 ? args[outAt + 1] ?? 'bench-report' : 'bench-report';
  const asked = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--out');
  const bad = asked.filter((a) => !scenarioNames.includes(a as ScenarioName));
  if (bad.length) {
    process.stderr.write(`shoal bench: unknown scenario ${bad.join(', ')}: choose from ${scenarioNames.join(', ')}\n`);
    process.exit(2);
  }
  try {
    const files = await runSuite({ scenarios: asked.length ? asked as ScenarioName[] : defaultScenarios, quick, out });
    process.stdout.write(args.includes('--json') ? `${JSON.stringify({ files })}\n` : `${files.join('\n')}\n`);
  } catch (err) {
    process.stderr.write(`shoal bench: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
