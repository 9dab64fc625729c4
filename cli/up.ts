// `shoal up`: an embedded local cluster in the foreground. It owns every
// process it starts and stops them all on Ctrl-C/SIGTERM.
import { logger } from '../node/log.ts';
import { startLocalCluster, type UpOptions, waitForReady } from '../harness/local.cluster.ts';
import { formatStatus } from './status.ts';

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
  process.stdout.write(`NATS: ${c.urls.join(',')}\n`);
  for (const [i, l] of c.leaves.entries()) {
    process.stdout.write(
      `edge site ${i + 1}: leaf nats-server ${l.url} (no JetStream; linked to the core, JetStream domain 'core'), node e${
        i + 1
      } (label zone=edge)\n`,
    );
  }
  if (c.auth) {
    process.stdout.write(`auth: anonymous connections are refused; connect files (user + password per role) in ${c.auth.dir}:\n`);
    for (const role of ['admin', 'node', 'client'] as const) process.stdout.write(`  ${role}: ${c.auth.file(role)}\n`);
  }
  for (const p of c.nodes) {
    const port = c.metricsPortOf(p.id);
    process.stdout.write(`node ${p.id}: pid ${p.pid}${port === null ? '' : `, metrics http://127.0.0.1:${port}/metrics`}\n`);
  }
  for (const p of c.nodes) {
    void p.exited.then((e) => {
      if (!stopping) log(`node ${p.id} (pid ${p.pid}) exited: ${e.code ?? e.signal}`);
    });
  }
  try {
    const s = await waitForReady(c.admin, options.nodes + (options.leaf ?? 0), { prefix: options.prefix, timeoutMs: 60_000 });
    process.stdout.write(`${formatStatus(s)}\n`);
    const how = c.auth ? `--connect ${c.auth.file('client')}` : `--nats ${c.urls[0]}`;
    process.stdout.write(`\nTry: shoal status ${how}   (Ctrl-C stops everything)\n`);
  } catch (err) {
    log((err as Error).message);
  }
  await stopped;
  return 0;
}
