// `shoal up`: an embedded local cluster in the foreground. It owns every
// process it starts and stops them all on Ctrl-C/SIGTERM.
import { logger } from '../node/log.ts';
import { startLocalCluster, type UpOptions, waitForReady } from '../harness/local.cluster.ts';
import { formatStatus } from './status.ts';
import { result, say } from '../base/output.ts';

export async function runUp(options: UpOptions): Promise<number> {
  const log = logger('up');
  const c = await startLocalCluster({ ...options, echo: options.echo ?? true });
  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping ${c.nodes.length} node(s) and ${c.servers.length} nats-server(s)`);
    await c.stop();
    log('all stopped');
  };
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', () => void shutdown('SIGINT').then(resolve));
    process.once('SIGTERM', () => void shutdown('SIGTERM').then(resolve));
  });
  say(`NATS: ${c.urls.join(',')}`);
  for (const [i, l] of c.leaves.entries()) {
    say(
      `edge site ${i + 1}: leaf nats-server ${l.url} (no JetStream; linked to the core, JetStream domain 'core'), node e${
        i + 1
      } (label zone=edge)`,
    );
  }
  if (c.auth) {
    say(`auth: anonymous connections are refused; connect files (user + password per role) in ${c.auth.dir}:`);
    for (const role of ['admin', 'node', 'client'] as const) say(`  ${role}: ${c.auth.file(role)}`);
  }
  for (const p of c.nodes) {
    const port = c.metricsPortOf(p.id);
    say(`node ${p.id}: pid ${p.pid}${port === null ? '' : `, metrics http://127.0.0.1:${port}/metrics`}`);
  }
  for (const p of c.nodes) {
    void p.exited.then((e) => {
      if (stopping) return;
      log(`node ${p.id} (pid ${p.pid}) exited: ${e.code ?? e.signal}`);
      result({ event: 'exited', node: p.id, pid: p.pid, code: e.code, signal: e.signal });
    });
  }
  try {
    const s = await waitForReady(c.admin, options.nodes + (options.leaf ?? 0), { prefix: options.prefix, timeoutMs: 60_000 });
    say(formatStatus(s));
    const how = c.auth ? `--connect ${c.auth.file('client')}` : `--nats ${c.urls[0]}`;
    say(`\nTry: shoal status ${how}   (Ctrl-C stops everything)`);
    result({
      event: 'ready',
      nats: c.urls,
      leaves: c.leaves.map((l) => l.url),
      connect: c.auth ? { admin: c.auth.file('admin'), node: c.auth.file('node'), client: c.auth.file('client') } : null,
      nodes: c.nodes.map((p) => ({ id: p.id, pid: p.pid, metricsPort: c.metricsPortOf(p.id) })),
      status: s,
    });
  } catch (err) {
    log((err as Error).message);
  }
  await stopped;
  return 0;
}
