// What a benchmark scenario hands back, and the report `shoal bench` writes
// from it: a Markdown table (figure | Shoal | baseline | ratio), the raw samples
// as CSV and JSON, and charts as SVG drawn by vega-lite + vega in Node.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';

/** One row of the report: Shoal's figure beside its baseline's, if it has one. */
export type Figure = {
  figure: string;
  unit: string;
  shoal: number;
  baseline?: { name: string; value: number };
  /** Shoal ÷ baseline when more is better, baseline ÷ Shoal when less is. */
  higherIsBetter?: boolean;
  /** The goal, as text (e.g. `≤ 2 ms`), and whether it was met. */
  goal?: { text: string; met: boolean };
};

/** A chart: a vega-lite spec (mark, encoding, …) without data, and the rows to plot. */
export type Chart = { name: string; title: string; spec: Record<string, unknown>; rows: Array<Record<string, number | string>> };

/** Strategies side by side: one column each, the best value in each row marked. */
export type Comparison = {
  title: string;
  columns: string[];
  rows: Array<
    { figure: string; unit: string; values: number[]; /** null: no better or worse (a count). */ higherIsBetter: boolean | null }
  >;
};

export type ScenarioResult = {
  scenario: string;
  title: string;
  /** What the scenario ran on (nodes, servers, counts). */
  setup: string;
  figures: Figure[];
  /** Raw samples by series name (ms, or per-second figures). */
  samples: Record<string, number[]>;
  charts: Chart[];
  /** Comparisons (strategies in columns), after the figures. */
  tables?: Comparison[];
  notes?: string[];
  ms: number;
};

/** A comparison as Markdown; the best value of each row in bold with ★. */
export function comparisonMarkdown(t: Comparison): string[] {
  const out = [`### ${t.title}`, '', `| figure | ${t.columns.join(' | ')} |`, `|---|${t.columns.map(() => '---').join('|')}|`];
  for (const r of t.rows) {
    const best = r.higherIsBetter === null ? null : (r.higherIsBetter ? Math.max : Math.min)(...r.values);
    const cells = r.values.map((
      v,
    ) => (best !== null && v === best && r.values.some((x) => x !== best) ? `**${round(v)}** ★` : `${round(v)}`));
    out.push(`| ${r.figure}${r.unit ? ` (${r.unit})` : ''} | ${cells.join(' | ')} |`);
  }
  return out;
}

const round = (v: number) => (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 100) / 100);

function ratio(f: Figure): string {
  if (!f.baseline || f.baseline.value === 0 || f.shoal === 0) return '';
  const r = f.higherIsBetter === false ? f.baseline.value / f.shoal : f.shoal / f.baseline.value;
  return r.toFixed(3);
}

export function markdown(results: ScenarioResult[], machine: string): string {
  const out = [`# Shoal benchmark report`, '', machine, ''];
  for (const r of results) {
    out.push(`## ${r.title}`, '', r.setup, '');
    if (r.figures.length) out.push('| figure | Shoal | baseline | ratio | goal |', '|---|---|---|---|---|');
    for (const f of r.figures) {
      const base = f.baseline ? `${round(f.baseline.value)} ${f.unit} (${f.baseline.name})` : '';
      const goal = f.goal ? `${f.goal.text} ${f.goal.met ? '✓' : '✗'}` : '';
      out.push(`| ${f.figure} | ${round(f.shoal)} ${f.unit} | ${base} | ${ratio(f)} | ${goal} |`);
    }
    for (const t of r.tables ?? []) out.push('', ...comparisonMarkdown(t));
    for (const c of r.charts) out.push('', `![${c.title}](${c.name}.svg)`);
    if (r.notes?.length) out.push('', ...r.notes.map((n) => `- ${n}`));
    out.push('', `(${(r.ms / 1000).toFixed(1)} s)`, '');
  }
  return out.join('\n');
}

export async function svg(c: Chart): Promise<string> {
  const spec = { width: 520, height: 300, ...c.spec, title: c.title, data: { values: c.rows } } as unknown as vl.TopLevelSpec;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes report.md, samples.json, samples.csv (series,value) and one SVG per chart into `dir`; returns the file names. */
export async function writeReport(dir: string, results: ScenarioResult[], machine: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files = ['report.md', 'samples.json', 'samples.csv'];
  writeFileSync(join(dir, 'report.md'), markdown(results, machine));
  writeFileSync(join(dir, 'samples.json'), JSON.stringify(Object.fromEntries(results.map((r) => [r.scenario, r])), null, 1));
  const csv = ['scenario,series,value'];
  for (const r of results) {
    for (const [series, xs] of Object.entries(r.samples)) for (const x of xs) csv.push(`${r.scenario},${series},${x}`);
    for (const t of r.tables ?? []) {
      for (const row of t.rows) row.values.forEach((v, i) => csv.push(`${r.scenario},"${t.title} / ${row.figure} / ${t.columns[i]}",${v}`));
    }
  }
  writeFileSync(join(dir, 'samples.csv'), `${csv.join('\n')}\n`);
  for (const r of results) {
    for (const c of r.charts) {
      writeFileSync(join(dir, `${c.name}.svg`), await svg(c));
      files.push(`${c.name}.svg`);
    }
  }
  return files;
}

/** A latency CDF of several series (ms). */
export function cdfChart(name: string, title: string, series: Record<string, number[]>): Chart {
  const rows: Chart['rows'] = [];
  for (const [s, xs] of Object.entries(series)) {
    const sorted = [...xs].sort((a, b) => a - b);
    sorted.forEach((ms, i) => rows.push({ series: s, ms, fraction: (i + 1) / sorted.length }));
  }
  return {
    name,
    title,
    rows,
    spec: {
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 'ms', type: 'quantitative', title: 'ms', scale: { type: 'symlog' } },
        y: { field: 'fraction', type: 'quantitative', title: 'fraction of jobs' },
        color: { field: 'series', type: 'nominal', title: null },
      },
    },
  };
}

/** One point per sample of each series (e.g. failover rounds). */
export function stripChart(name: string, title: string, unit: string, series: Record<string, number[]>): Chart {
  const rows = Object.entries(series).flatMap(([s, xs]) => xs.map((v, i) => ({ series: s, round: i + 1, value: v })));
  return {
    name,
    title,
    rows,
    spec: {
      height: 40 * Object.keys(series).length + 20,
      mark: { type: 'point', filled: true },
      encoding: {
        x: { field: 'value', type: 'quantitative', title: unit },
        y: { field: 'series', type: 'nominal', title: null },
        color: { field: 'series', type: 'nominal', legend: null },
      },
    },
  };
}

/** A count per time bin (e.g. job starts per 250 ms) as a line, with a labelled rule at each event (e.g. a fault). */
export function timelineChart(
  name: string,
  title: string,
  bins: Array<{ s: number; count: number }>,
  marks: Array<{ s: number; label: string }>,
  yTitle: string,
): Chart {
  const rows: Chart['rows'] = [
    ...bins.map((b) => ({ kind: 'bin', s: b.s, count: b.count })),
    ...marks.map((m) => ({ kind: 'mark', s: m.s, label: m.label })),
  ];
  return {
    name,
    title,
    rows,
    spec: {
      layer: [
        {
          transform: [{ filter: "datum.kind === 'bin'" }],
          mark: { type: 'line', interpolate: 'step-after' },
          encoding: {
            x: { field: 's', type: 'quantitative', title: 'seconds' },
            y: { field: 'count', type: 'quantitative', title: yTitle },
          },
        },
        {
          transform: [{ filter: "datum.kind === 'mark'" }],
          mark: { type: 'rule', color: 'firebrick', strokeDash: [4, 3] },
          encoding: { x: { field: 's', type: 'quantitative' } },
        },
        {
          transform: [{ filter: "datum.kind === 'mark'" }],
          mark: { type: 'text', align: 'left', dx: 3, dy: -4, color: 'firebrick', baseline: 'top' },
          encoding: { x: { field: 's', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } },
        },
      ],
    },
  };
}
