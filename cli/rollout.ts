// `shoal rollout`: a rolling restart, one node at a time. Each node is drained
// (it hands its jobs back: they resume elsewhere from their checkpoints, so none
// fails and none runs twice), leaves, and must come back under the same id (its
// supervisor restarts it: systemd `Restart=always`, Kubernetes, or `shoal up
// --restart`) and be ready before the next one goes. Stops at the first node
// that does not come back, with what to check.
import type { NatsConnection } from '@nats-io/transport-node';
import { callApi } from '../nats/client.ts';
import type { ClusterView } from '../api/contract.ts';
import type { Names } from '../nats/subjects.ts';
import { sleep } from '../base/time.ts';
import { type Common, withApi } from './client.ts';
import { result, say as sayLine } from '../base/output.ts';

export type RolloutOptions = Common & { timeout: number; nodes?: string[] };

type Node = ClusterView['nodes'][number];

async function until(nc: NatsConnection, n: Names, what: string, timeoutMs: number, pred: (s: ClusterView) => Node | boolean | undefined) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const s = await callApi(nc, n, 'status', {}, 2_000);
      const r = pred(s);
      if (r) return r;
    } catch {
      // a node going away may leave one status request unanswered: ask again
    }
    if (Date.now() > deadline) throw new Error(what);
    await sleep(200);
  }
}

/** Restart every live node (or those named), one at a time. Resolves with the exit code. */
export async function runRollout(options: RolloutOptions, say: (line: string) => void = sayLine): Promise<number> {
  return withApi(options, async (nc, n) => {
    const first = await callApi(nc, n, 'status', {});
    const ids = options.nodes?.length ? options.nodes : first.nodes.map((x) => x.id);
    const unknown = ids.filter((id) => !first.nodes.some((x) => x.id === id));
    if (unknown.length) throw new Error(`no live node with id ${unknown.join(', ')} (live: ${first.nodes.map((x) => x.id).join(', ')})`);
    if (first.nodes.length < 2) {
      throw new Error('a rolling restart needs at least 2 live nodes: the jobs of the one restarting go to the others');
    }
    for (const [i, id] of ids.entries()) {
      const before = first.nodes.find((x) => x.id === id)!;
      const t0 = Date.now();
      say(`[${i + 1}/${ids.length}] ${id} (pid ${before.pid}): draining`);
      await callApi(nc, n, 'nodes.drain', { id });
      // Gone, or already back under a new lease (a fast supervisor): its lease epoch changes with every start.
      const restarted = (x: Node) => x.id === id && x.epoch !== before.epoch;
      await until(
        nc,
        n,
        `${id} did not leave within ${options.timeout} ms: see its log`,
        options.timeout,
        (s) => !s.nodes.some((x) => x.id === id && !restarted(x)),
      );
      say(`[${i + 1}/${ids.length}] ${id}: gone after ${Date.now() - t0} ms; waiting for it to come back`);
      const back = await until(
        nc,
        n,
        `${id} did not come back within ${options.timeout} ms: is it supervised (systemd Restart=always, a Kubernetes Deployment, shoal up --restart)? ` +
          'The rollout stops here; the other nodes were not touched',
        options.timeout,
        (s) => s.nodes.find((x) => restarted(x) && x.state === 'ready') ?? false,
      ) as Node;
      say(`[${i + 1}/${ids.length}] ${id}: back (pid ${back.pid}) after ${Date.now() - t0} ms`);
    }
    say(`rollout done: ${ids.length} node(s) restarted one at a time`);
    result({ restarted: ids });
    return 0;
  });
}
