// `shoal status`: one request to shoal.api.status, shown as a table or JSON.
import Table from 'cli-table3';
import { callApi } from '../nats/client.ts';
import type { ClusterView } from '../api/contract.ts';
import { type Common, print, withApi } from './client.ts';

import type { Fairness } from '../api/contract.ts';

export type StatusView = ClusterView & {
  jobs?: Record<string, number>;
  queueDepth?: number;
  pending?: { total: number; byReason: Record<string, number> };
  fairness?: Fairness;
};

/** A node's capacity beyond its slots: I/O slots, GPUs, memory, labels. */
function capacity(n: ClusterView['nodes'][number]): string {
  const parts = [
    ...(n.ioSlots ? [`io ${n.ioSlots}`] : []),
    ...(n.gpu ? [`gpu ${n.gpu}`] : []),
    ...(n.memMb !== null && n.memMb !== undefined ? [`${Math.round(n.memMb / 1024)} GiB`] : []),
    ...Object.entries(n.labels ?? {}).map(([k, v]) => `${k}=${v}`),
  ];
  return parts.join(' ');
}

export function formatStatus(s: StatusView): string {
  const lines: string[] = [];
  lines.push(
    s.leader
      ? `leader: ${s.leader.nodeId}  epoch ${s.leader.epoch}  since ${s.leader.since}`
      : 'leader: none (an election is under way, or no node runs)',
  );
  const t = new Table({
    head: ['node', 'state', 'pid', 'host', 'runtime', 'running/slots', 'capacity', 'policy', 'last seen'],
    style: { head: [], border: [] },
  });
  for (const n of s.nodes) {
    const speed = n.speed !== undefined && n.speed !== 1 ? ` ×${n.speed}` : '';
    const policy = n.placement === 'centralized' || n.placement === 'pull' ? `${n.placement} (no bids)` : n.policy;
    t.push([
      n.id + (s.leader?.nodeId === n.id ? ' *' : ''),
      n.state,
      n.pid,
      n.host,
      n.runtime,
      `${n.running}/${n.slots}${speed}`,
      capacity(n),
      policy,
      n.lastSeen,
    ]);
  }
  lines.push(s.nodes.length ? t.toString() : 'nodes: none');
  if (s.jobs) lines.push(`jobs: ${Object.entries(s.jobs).map(([k, v]) => `${k} ${v}`).join(', ')}; queue depth ${s.queueDepth ?? 0}`);
  if (s.pending?.total) {
    lines.push(`waiting for a node that can run them: ${s.pending.total}`);
    for (const [why, k] of Object.entries(s.pending.byReason)) lines.push(`  ${k}  ${why}`);
  }
  if (s.fairness) {
    const work = Object.entries(s.fairness.jobSeconds).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
    lines.push(`work in the last ${s.fairness.windowMs / 1000} s (job-seconds): ${work || 'none'}; Gini ${s.fairness.gini.toFixed(3)}`);
  }
  return lines.join('\n');
}

export function runStatus(options: Common & { json?: boolean; timeout: number }): Promise<number> {
  return withApi(options, async (nc, n) => {
    const s = await callApi(nc, n, 'status', {}, options.timeout);
    print(options.json ? JSON.stringify(s, null, 2) : formatStatus(s));
    return 0;
  });
}
