// `shoal chaos`: generated fault schedules against real processes (or, with
// --sim, the model-based simulation), a progress bar per run, a summary table,
// and on failure the seed, the shrunk schedule and a file to replay it from.
import { result, say } from '../base/output.ts';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { describeSchedule, realFaultKinds, type Schedule } from '../chaos/real/schedule.ts';
import { type RunPhase, type RunResult, runSchedule } from '../chaos/real/run.ts';
import { type ChaosFailure, failureFile, parseFailureFile, runChaos } from '../chaos/real/suite.ts';
import { invariants } from '../chaos/history.ts';
import { type Violation } from '../chaos/history.ts';
import { chaosLeaseTtlMs } from '../chaos/defaults.ts';
import { replaySimulation, runSimulation, type SimFailureReport, type SimReport } from '../chaos/sim/suite.ts';

export type ChaosCliOptions = {
  /** Default: 5 real runs, or 1,000 simulated cases. */
  runs?: number;
  sim?: boolean;
  seed?: number;
  /** Node processes (default 3), or simulated nodes per case (default: 2 to 4, drawn per case). */
  nodes?: number;
  servers: 1 | 3;
  duration: number;
  leaseTtl?: number;
  shrinkRuns: number;
  replay?: string;
  out: string;
  verbose?: boolean;
  /** The last node is an edge node behind a leaf-node server; schedules also cut the leaf link. */
  leaf?: boolean;
};

function percentile(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const ms = (v: number | null) => (v === null ? '–' : `${(v / 1000).toFixed(1)} s`);

/** One line of progress per phase change when not on a terminal, a bar when on one. */
function progressView(runs: number) {
  const tty = process.stderr.isTTY;
  let bar: cliProgress.SingleBar | null = null;
  let lastPhase: RunPhase | null = null;
  return {
    start(i: number, s: Schedule, shrinking: boolean) {
      const label = shrinking ? `shrink ${i + 1}` : `run ${i + 1}/${runs}`;
      if (tty) {
        bar = new cliProgress.SingleBar({
          format: `${label} [{bar}] {value}/{total} {phase} {detail}`,
          stream: process.stderr,
          clearOnComplete: false,
          hideCursor: true,
        }, cliProgress.Presets.shades_classic);
        bar.start(Math.max(1, s.steps.length), 0, { phase: 'starting', detail: '' });
      } else {
        process.stderr.write(`${label}: ${s.steps.length} steps, ${s.initial.length} initial jobs\n`);
      }
      lastPhase = null;
    },
    update(p: { phase: RunPhase; done: number; total: number; detail?: string }) {
      if (bar) {
        bar.setTotal(Math.max(1, p.total));
        bar.update(p.done, { phase: p.phase, detail: (p.detail ?? '').slice(0, 60) });
      } else if (p.phase !== lastPhase) {
        process.stderr.write(`  ${p.phase}${p.detail ? `: ${p.detail}` : ''}\n`);
      }
      lastPhase = p.phase;
    },
    end(r: RunResult) {
      bar?.stop();
      bar = null;
      const verdict = r.violations.length === 0 ? 'ok' : `${r.violations.length} VIOLATION(S)`;
      process.stderr.write(
        `  ${verdict}: ${r.jobs} jobs, leader ${ms(r.recovery.leaderMs)} and all jobs terminal ${
          ms(r.recovery.allTerminalMs)
        } after the faults stopped; ${ms(r.durationMs)}\n`,
      );
    },
  };
}

function printViolations(vs: Violation[]): void {
  for (const v of vs) {
    say(`  ✗ [${v.invariant}] ${v.message}`);
    for (const e of v.events.slice(0, 4)) {
      say(
        `      ${new Date(e.wall).toISOString()} ${e.node} ${e.kind} ${e.actor}: ${e.from ?? '∅'} → ${e.to} (${e.event}, epoch ${e.epoch})`,
      );
    }
  }
}

export function summaryTable(results: RunResult[], failed: number): string {
  const t = new Table({ head: ['', 'value'], style: { head: [], border: [], compact: true } });
  const faults: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v;
  const total = Object.values(faults).reduce((a, b) => a + b, 0);
  t.push(['runs (schedules)', `${results.length} (${failed} failed)`]);
  t.push(['faults injected', `${total} (${results.reduce((a, r) => a + r.skipped, 0)} had nothing to act on)`]);
  for (const k of realFaultKinds) if (faults[k]) t.push([`  ${k}`, faults[k]]);
  t.push(['jobs', results.reduce((a, r) => a + r.jobs, 0)]);
  t.push([
    'invariant checks',
    `${results.length * invariants.length} (${results.reduce((a, r) => a + new Set(r.violations.map((v) => v.invariant)).size, 0)} failed)`,
  ]);
  t.push(['violations', results.reduce((a, r) => a + r.violations.length, 0)]);
  const leader = results.map((r) => r.recovery.leaderMs).filter((x): x is number => x !== null);
  const done = results.map((r) => r.recovery.allTerminalMs).filter((x): x is number => x !== null);
  t.push(['leader after faults stop (p50 / max)', `${ms(percentile(leader, 50))} / ${ms(percentile(leader, 100))}`]);
  t.push(['all jobs terminal after faults stop (p50 / max)', `${ms(percentile(done, 50))} / ${ms(percentile(done, 100))}`]);
  t.push(['time per run (p50)', ms(percentile(results.map((r) => r.durationMs), 50))]);
  return t.toString();
}

export async function runChaosCli(opts: ChaosCliOptions): Promise<number> {
  if (opts.replay) return replay(opts);
  if (opts.sim) return simulate(opts);
  const o = { ...opts, runs: opts.runs ?? 5, nodes: opts.nodes ?? 3 };
  if (o.leaf && o.servers !== 3) {
    throw new Error(
      '--leaf needs --servers 3: with a lone core server an edge leader cut off may overlap a new one (docs/operations.md, Leaf-node edges)',
    );
  }
  const leaseTtlMs = o.leaseTtl ?? chaosLeaseTtlMs(o.servers);
  const view = progressView(o.runs);
  say(
    `shoal chaos: ${o.runs} run(s), ${o.nodes} nodes${
      o.leaf ? ` (n${o.nodes} at an edge site behind a leaf server)` : ''
    }, ${o.servers} nats-server(s), lease TTL ${leaseTtlMs} ms, faults within ${o.duration} ms${
      o.seed !== undefined ? `, seed ${o.seed}` : ''
    }`,
  );
  const report = await runChaos({
    runs: o.runs,
    seed: o.seed,
    nodes: o.nodes,
    servers: o.servers,
    leaseTtlMs,
    durationMs: o.duration,
    shrinkRuns: o.shrinkRuns,
    leaf: o.leaf,
    log: o.verbose ? (l) => process.stderr.write(`    ${l}\n`) : undefined,
    onRunStart: (i, s, shrinking) => {
      view.start(i, s, shrinking);
      if (o.verbose) describeSchedule(s).forEach((l) => process.stderr.write(`    ${l}\n`));
    },
    onProgress: (_i, p) => view.update(p),
    onRunEnd: (_i, r) => view.end(r),
  });
  say(summaryTable(report.results, report.failure ? 1 : 0));
  say(`seed ${report.seed}`);
  const file = report.failure ? reportFailure(report.failure, o, leaseTtlMs) : null;
  result({
    seed: report.seed,
    runs: report.results.length,
    failed: report.failure ? 1 : 0,
    jobs: report.results.reduce((a, r) => a + r.jobs, 0),
    violations: report.failure?.result.violations.map((v) => ({ invariant: v.invariant, subject: v.subject, message: v.message })) ?? [],
    failureFile: file,
  });
  return report.failure ? 1 : 0;
}

/** Say what failed and save it; returns the failure file. */
function reportFailure(f: ChaosFailure, options: ChaosCliOptions & { runs: number; nodes: number }, leaseTtlMs: number): string {
  say(`\nFAILED (seed ${f.seed}, path "${f.path}", shrunk ${f.shrinks} time(s)). The smallest failing schedule:`);
  describeSchedule(f.schedule).forEach((l) => say(`  ${l}`));
  say('Violations:');
  printViolations(f.result.violations);
  mkdirSync(options.out, { recursive: true });
  const file = resolve(options.out, `chaos-failure-${f.seed}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      failureFile(f, { nodes: options.nodes, servers: options.servers, leaseTtlMs, durationMs: options.duration, leaf: options.leaf }),
      null,
      1,
    ),
  );
  say(`\nHistory, records and node logs written to ${file}`);
  say(`Replay this schedule: shoal chaos --replay ${file}`);
  say(`Watch it step by step, the violation marked on the timeline: shoal inspect --replay ${file}`);
  say(
    `Re-generate the same runs: shoal chaos --seed ${f.seed} --runs ${options.runs} --nodes ${options.nodes} --servers ${options.servers} --duration ${options.duration}`,
  );
  return file;
}

async function replay(options: ChaosCliOptions): Promise<number> {
  const file = resolve(options.replay!);
  const text = readFileSync(file, 'utf8');
  if (text.includes('"shoal-sim-failure"')) return replaySim(parseSimFailureFile(text, file), file);
  const f = parseFailureFile(text, file);
  say(`Replaying the schedule from ${file} (seed ${f.seed}); real timing varies, so a replay is best effort:`);
  describeSchedule(f.schedule).forEach((l) => say(`  ${l}`));
  const view = progressView(1);
  view.start(0, f.schedule, false);
  const r = await runSchedule(f.schedule, {
    nodes: f.options.nodes,
    servers: f.options.servers,
    leaseTtlMs: f.options.leaseTtlMs,
    leaf: f.options.leaf,
    onProgress: (p) => view.update(p),
    log: options.verbose ? (l) => process.stderr.write(`    ${l}\n`) : undefined,
  });
  view.end(r);
  say(summaryTable([r], r.violations.length ? 1 : 0));
  result({ replay: file, violations: r.violations.map((v) => ({ invariant: v.invariant, subject: v.subject, message: v.message })) });
  if (r.violations.length === 0) {
    say('The replay found no violation this time.');
    return 0;
  }
  printViolations(r.violations);
  return 1;
}

/**
 * A simulated failure, as saved: fast-check's seed, path and replay hint rerun exactly that case, with the
 * options the run generated its cases from (`options.nodes`: its --nodes; absent: 2 to 4). `nodes` is the
 * size fast-check drew for this case: replaying with it as the option generates other cases (a wrong path).
 */
type SimFailureFile = SimFailureReport & { kind: 'shoal-sim-failure'; options?: { nodes?: number } };

function parseSimFailureFile(text: string, file: string): SimFailureFile {
  const v = JSON.parse(text) as Partial<SimFailureFile>;
  if (v.kind !== 'shoal-sim-failure' || typeof v.seed !== 'number' || typeof v.path !== 'string' || typeof v.replayPath !== 'string') {
    throw new Error(`${file} is not a simulation failure file (written by 'shoal chaos --sim' on failure)`);
  }
  return v as SimFailureFile;
}

async function simulate(options: ChaosCliOptions): Promise<number> {
  const runs = options.runs ?? 1_000;
  say(
    `shoal chaos --sim: ${runs} simulated cases (pure machines and the real node wiring on a virtual clock, an in-memory KV with JetStream's CAS and TTL, a simulated network)${
      options.seed !== undefined ? `, seed ${options.seed}` : ''
    }`,
  );
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar({
      format: 'cases [{bar}] {value}/{total} | {violations} violating',
      stream: process.stderr,
      hideCursor: true,
    }, cliProgress.Presets.shades_classic)
    : null;
  bar?.start(runs, 0, { violations: 0 });
  let violating = 0;
  const report = await runSimulation({
    runs,
    seed: options.seed,
    nodes: options.nodes,
    onRun: (i, r) => {
      if (r.violations.length) violating++;
      bar?.update(i + 1, { violations: violating });
      if (!bar && (i + 1) % 100 === 0) process.stderr.write(`  ${i + 1}/${runs} cases\n`);
    },
  });
  bar?.stop();
  say(simSummaryTable(report));
  say(`seed ${report.seed}`);
  const f = report.failure;
  const simResult = (file: string | null) =>
    result({
      seed: report.seed,
      cases: report.runs,
      failed: report.checks.failed,
      jobs: report.jobs,
      faults: report.faults,
      violations: f?.violations.map((v) => ({ invariant: v.invariant, subject: v.subject, message: v.message })) ?? [],
      failureFile: file,
    });
  if (!f) {
    simResult(null);
    return 0;
  }
  say(`\nFAILED (seed ${f.seed}, path "${f.path}", ${f.shrinks} shrinking case(s)). The smallest failing command list (${f.nodes} nodes):`);
  f.commands.forEach((c) => say(`  ${c}`));
  say('Violations:');
  printViolations(f.violations);
  mkdirSync(options.out, { recursive: true });
  const file = resolve(options.out, `chaos-sim-failure-${f.seed}.json`);
  const saved: SimFailureFile = { kind: 'shoal-sim-failure', ...f, options: options.nodes === undefined ? {} : { nodes: options.nodes } };
  writeFileSync(file, JSON.stringify(saved, null, 1));
  say(`\nHistory and node logs written to ${file}`);
  say(`Replay exactly this case: shoal chaos --replay ${file}`);
  simResult(file);
  return 1;
}

async function replaySim(f: SimFailureFile, file: string): Promise<number> {
  say(`Replaying simulated case (seed ${f.seed}, path "${f.path}"):`);
  f.commands.forEach((c) => say(`  ${c}`));
  const r = await replaySimulation({ seed: f.seed, path: f.path, replayPath: f.replayPath, nodes: f.options?.nodes });
  if (!r) throw new Error('the replay ran no case (the seed and path do not match this version of the simulation)');
  // A path can also be valid for another case (other options, or another version of the commands): say so, not "passes now".
  if (r.commands.join('\n') !== f.commands.join('\n')) {
    throw new Error(`the replay ran another case (${r.commands.join(', ')}): this file's options or simulation version differ`);
  }
  result({
    replay: file,
    path: f.path,
    seed: f.seed,
    violations: r.violations.map((v) => ({ invariant: v.invariant, subject: v.subject, message: v.message })),
  });
  if (r.violations.length === 0) {
    say('No violation: the case passes now.');
    return 0;
  }
  printViolations(r.violations);
  return 1;
}

export function simSummaryTable(r: SimReport): string {
  const t = new Table({ head: ['', 'value'], style: { head: [], border: [], compact: true } });
  const faults = Object.values(r.faults).reduce((a, b) => a + b, 0);
  t.push(['cases', `${r.runs} (${r.checks.failed} failed)`]);
  t.push(['commands', Object.values(r.commands).reduce((a, b) => a + b, 0)]);
  t.push(['faults injected', faults]);
  for (const [k, v] of Object.entries(r.faults).sort((a, b) => b[1] - a[1])) t.push([`  ${k}`, v]);
  t.push(['jobs', r.jobs]);
  t.push(['  attempts preempted (or drained)', r.preempted]);
  t.push(['  jobs that waited for a GPU node, with the reason', r.waitedWithReason]);
  t.push(['invariant checks', `${r.runs * invariants.length} (${r.checks.failed} case(s) with violations)`]);
  const leader = r.recovery.map((x) => x.leaderMs).filter((x): x is number => x !== null);
  const done = r.recovery.map((x) => x.allTerminalMs).filter((x): x is number => x !== null);
  t.push(['leader after faults stop, virtual (p50 / max)', `${ms(percentile(leader, 50))} / ${ms(percentile(leader, 100))}`]);
  t.push(['all jobs terminal after faults stop, virtual (p50 / max)', `${ms(percentile(done, 50))} / ${ms(percentile(done, 100))}`]);
  t.push(['virtual time simulated', ms(r.virtualMs)]);
  t.push(['wall time', `${ms(r.wallMs)} (${Math.round(r.runs / (r.wallMs / 1000))} cases/s)`]);
  return t.toString();
}
