// Small shared test helpers. Importing this also makes a test file that the
// runner stops (timeout, Ctrl-C) kill every node process and server it started.
import { killAllNodes } from '../harness/spawn.ts';
import { stopAllServers } from '../harness/launcher.ts';

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    killAllNodes();
    stopAllServers();
    process.exit(130);
  });
}

export { until } from '../base/time.ts';
