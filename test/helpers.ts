// Small shared test helpers. Importing this also makes a test file that the
// runner stops (timeout, Ctrl-C) kill every node process and server it started.
import { after, before } from 'node:test';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { killAllNodes } from '../harness/spawn.ts';
import { stopAllServers } from '../harness/launcher.ts';
import { type LocalCluster, startLocalCluster, type UpOptions, waitForReady } from '../harness/local.cluster.ts';

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    killAllNodes();
    stopAllServers();
    process.exit(130);
  });
}

export { until } from '../base/time.ts';

export type ClusterSetup = Partial<UpOptions> & {
  nodes: number;
  /** Wait before the tests until this many nodes are ready and one leads (default: all of them; false: do not wait). */
  ready?: number | false;
  /** More options for the test's own connection (it connects as the cluster's admin). */
  connect?: Partial<ConnectionOptions>;
};

/**
 * One line of set-up for an integration file (or a `describe`): before its
 * tests, a local cluster of real processes (one nats-server, lease TTL 1 s
 * unless `setup` says otherwise) and a connection to it, handed to `use`;
 * after them, both stopped, even when a test failed.
 */
export function withCluster(setup: ClusterSetup, use: (fixture: { c: LocalCluster; nc: NatsConnection }) => void): void {
  let c: LocalCluster | null = null;
  let nc: NatsConnection | null = null;
  before(async () => {
    const { ready, connect: connectOptions, ...options } = setup;
    c = await startLocalCluster({ cluster: 1, port: 0, leaseTtlMs: 1000, ...options });
    nc = await connect({ ...(Array.isArray(c.admin) ? { servers: c.admin } : c.admin), ...connectOptions });
    use({ c, nc });
    if (ready !== false) await waitForReady(c.admin, ready ?? setup.nodes, { prefix: setup.prefix });
  });
  after(async () => {
    await nc?.close();
    await c?.stop();
  });
}
