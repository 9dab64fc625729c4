// `memory`: does a node's memory stay flat while jobs pass through it? A
// steady stream of noop jobs (256 in flight) through 3 node processes whose
// leader deletes finished jobs 10 s after they end (`--retention`); each
// process's resident memory (RSS, from /proc) is sampled every tenth of the
// run. Reported: each node's RSS after the first tenth and at the end, and the
// ratio (flat: about 1). By name only (`shoal bench memory`): it runs minutes.
import { readFileSync } from 'node:fs';
import { callApi } from '../nats/client.ts';
import { n, type ScenarioOptions, setup, window, withCluster } from './common.ts';
import type { Chart, Figure, ScenarioResult } from './report.ts';

const retentionMs = 10_000;

/** Resident memory of a process, MiB (from /proc: Linux). */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function memory(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = performance.now();
  const total = options.quick ? 50_000 : 1_000_000;
  const tenth = total / 10;
  return await withCluster(async (c, nc) => {
    const rows: Array<Record<string, number | string>> = [];
    const sample = (jobs: number) => {
      for (const p of c.nodes) rows.push({ jobs, node: p.id, rssMiB: Math.round(rssMiB(p.pid) * 10) / 10 });
    };
    const tag = Date.now().toString(36);
    const t0 = performance.now();
    for (let k = 0; k < 10; k++) {
      await window(tenth, 256, async (i) => {
        const id = `m-${tag}-${k * tenth + i}`;
        await callApi(nc, n, 'jobs.submit', { type: 'noop', id });
        await callApi(nc, n, 'jobs.wait', { id, timeoutMs: 120_000 }, 125_000);
      }, (d) => options.progress(k * tenth + d, total, 'noop jobs through 3 nodes'));
      sample((k + 1) * tenth);
    }
    const seconds = (performance.now() - t0) / 1000;
    const status = await callApi(nc, n, 'status');
    const stored = Object.values(status.jobs).reduce((a, b) => a + b, 0);
    const at = (jobs: number, node: string) => Number(rows.find((r) => r.jobs === jobs && r.node === node)?.rssMiB ?? NaN);
    const figures: Figure[] = c.nodes.flatMap((p) => [
      { figure: `${p.id}: RSS after ${tenth.toLocaleString('en')} jobs`, unit: 'MiB', shoal: at(tenth, p.id) },
      {
        figure: `${p.id}: RSS after ${total.toLocaleString('en')} jobs`,
        unit: 'MiB',
        shoal: at(total, p.id),
        baseline: { name: `after ${tenth.toLocaleString('en')}`, value: at(tenth, p.id) },
        higherIsBetter: false,
      },
    ]);
    figures.push(
      { figure: 'jobs/s over the run', unit: '/s', shoal: Math.round(total / seconds) },
      { figure: `jobs still stored at the end (retention ${retentionMs / 1000} s)`, unit: '', shoal: stored },
    );
    const chart: Chart = {
      name: 'memory-rss',
      title: 'resident memory of each node process as jobs pass through',
      spec: {
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'jobs', type: 'quantitative', title: 'jobs finished' },
          y: { field: 'rssMiB', type: 'quantitative', title: 'RSS (MiB)' },
          color: { field: 'node', type: 'nominal' },
        },
      },
      rows,
    };
    return {
      scenario: 'memory',
      title: `Memory: ${total.toLocaleString('en')} noop jobs through 3 nodes`,
      setup: `${setup}; --retention ${retentionMs} ms; ${total.toLocaleString('en')} noop jobs, 256 in flight; RSS sampled each tenth`,
      figures,
      samples: Object.fromEntries(c.nodes.map((p) => [`rss ${p.id}`, rows.filter((r) => r.node === p.id).map((r) => Number(r.rssMiB))])),
      charts: [chart],
      notes: ['RSS includes what V8 has not given back yet; a flat series (ratio near 1) means nothing grows with the jobs that passed.'],
      ms: performance.now() - began,
    };
  }, ['--retention', String(retentionMs)]);
}
