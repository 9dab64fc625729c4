// Inspection overhead (not a test): `noop` throughput of 3 node processes on
// one nats-server with no viewer, then with `shoal inspect` running and a page
// reading its live stream (the nodes' inspection feed on, the events stream
// and job records followed), alternating A/B rounds so drift hits both alike.
// Reports jobs/s per round, the ratio of medians, and what the feed sent and dropped.
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import Table from 'cli-table3';
import { startLocalCluster, waitForReady } from '../harness/local.cluster.ts';
import { shoalCommand } from '../harness/spawn.ts';
import { names } from '../nats/subjects.ts';
import { pct, say, throughput } from './measure.ts';

const N = Number(process.env.JOBS ?? 2000);
const rounds = Number(process.env.ROUNDS ?? 3);
const n = names();

/** `shoal inspect` plus one page reading its event stream; resolves once the page gets its first message. */
async function viewer(nats: string): Promise<{ stop(): Promise<void>; bytes(): number }> {
  const [cmd, args] = shoalCommand('node', ['inspect', '--nats', nats, '--port', '0']);
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /Shoal inspector: (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`shoal inspect exited (${code}): ${out}`)));
  });
  const abort = new AbortController();
  const res = await fetch(new URL('/api/stream', url), { signal: abort.signal });
  let bytes = 0;
  const reader = res.body!.getReader();
  await reader.read().then((r) => (bytes += r.value?.length ?? 0));
  void (async () => {
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) return;
        bytes += r.value.length;
      }
    } catch {
      // aborted
    }
  })();
  return {
    bytes: () => bytes,
    async stop() {
      abort.abort();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Sum of one counter over every node's /metrics. */
async function metric(ports: number[], name: string): Promise<number> {
  let sum = 0;
  for (const port of ports) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').at(-1));
    }
  }
  return sum;
}

const metricsPort = 19_400 + Math.floor(Math.random() * 500);
const c = await startLocalCluster({ nodes: 3, cluster: 1, port: 0, leaseTtlMs: 1000, metricsPort });
const ports = ['n1', 'n2', 'n3'].map((id) => c.metricsPortOf(id)!);
const nc = await connect({ servers: c.urls });
const tag = Date.now().toString(36);
const without: number[] = [];
const withViewer: number[] = [];
let sent = 0;
let dropped = 0;
let pageBytes = 0;
try {
  await waitForReady(c.urls, 3);
  await throughput(nc, n, 200, `${tag}-warm`);
  for (let r = 0; r < rounds; r++) {
    say(`round ${r + 1}/${rounds}: ${N} noop jobs, no viewer...`);
    without.push(await throughput(nc, n, N, `${tag}-a${r}`));
    say(`round ${r + 1}/${rounds}: ${N} noop jobs, shoal inspect with a page open...`);
    const v = await viewer(c.urls[0]!);
    const [s0, d0] = [
      await metric(ports, 'shoal_inspect_events_published_total'),
      await metric(ports, 'shoal_inspect_events_dropped_total'),
    ];
    withViewer.push(await throughput(nc, n, N, `${tag}-b${r}`));
    sent += (await metric(ports, 'shoal_inspect_events_published_total')) - s0;
    dropped += (await metric(ports, 'shoal_inspect_events_dropped_total')) - d0;
    pageBytes += v.bytes();
    await v.stop();
  }
  const t = new Table({
    head: [`noop jobs/s (${N} per round, 3 nodes)`, ...without.map((_, i) => `round ${i + 1}`), 'median'],
    style: { head: [], border: [] },
  });
  t.push(['no viewer', ...without.map(Math.round), Math.round(pct(without, 50))]);
  t.push(['shoal inspect + a page', ...withViewer.map(Math.round), Math.round(pct(withViewer, 50))]);
  const ratio = pct(withViewer, 50) / pct(without, 50);
  process.stdout.write(
    `${t.toString()}\nwith a viewer / without: ${ratio.toFixed(3)}\n` +
      `inspection events sent by the nodes while viewed: ${sent} (${
        Math.round(sent / rounds / N * 10) / 10
      } per job), dropped: ${dropped}; ` +
      `bytes streamed to the page: ${Math.round(pageBytes / rounds / 1024)} KiB per round\n`,
  );
} finally {
  await nc.close();
  await c.stop();
}
