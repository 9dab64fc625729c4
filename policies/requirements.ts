// Placement by resources: what a job requires of a node (memory, GPUs,
// labels), whether a node's capacity satisfies it, and, when no live node
// does, the reason in words that the job's record shows while it waits.
import type { Requirements } from '../api/contract.ts';

/** What a node offers, as its advert says (memory and GPUs in total, not what is free now). */
export type NodeCapacity = { memMb: number; gpu: number; labels: Record<string, string> };

/** Resources a running job holds on its node (labels hold nothing). */
export type Usage = { memMb: number; gpu: number };

export const noUsage: Usage = { memMb: 0, gpu: 0 };

/** `a + sign × b`, resource by resource. */
export function addUsage(a: Usage, b: Usage, sign: 1 | -1 = 1): Usage {
  return { memMb: a.memMb + sign * b.memMb, gpu: a.gpu + sign * b.gpu };
}

/** A node's capacity from what it declares: memory without a figure has no limit, GPUs default to none. */
export function nodeCapacity(options: { memMb?: number | null; gpu?: number; labels?: Record<string, string> }): NodeCapacity {
  return { memMb: options.memMb ?? Infinity, gpu: options.gpu ?? 0, labels: options.labels ?? {} };
}

export function usageOf(req: Requirements | null | undefined): Usage {
  return { memMb: req?.memMb ?? 0, gpu: req?.gpu ?? 0 };
}

/** Whether a node could ever run the job (its totals and labels), whatever it runs now. */
export function satisfies(req: Requirements | null | undefined, cap: NodeCapacity): boolean {
  return unmetOn(req, cap).length === 0;
}

/** Whether the job fits in what a node has free now. */
export function fitsFree(req: Requirements | null | undefined, free: Usage): boolean {
  const u = usageOf(req);
  return u.memMb <= free.memMb && u.gpu <= free.gpu;
}

/** Whether a node can run the job now: it satisfies it, and has its memory and GPUs free (absent: all of its capacity). */
export function canRunNow(req: Requirements | null | undefined, cap: NodeCapacity, free: Usage = cap): boolean {
  return !req || (satisfies(req, cap) && fitsFree(req, free));
}

/** The requirements this node's capacity does not meet, each as a phrase ("label zone=edge", "2 GPUs", "4096 MB of memory"). */
export function unmetOn(req: Requirements | null | undefined, cap: NodeCapacity): string[] {
  if (!req) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(req.labels ?? {})) if (cap.labels[k] !== v) out.push(`label ${k}=${v}`);
  if ((req.gpu ?? 0) > cap.gpu) out.push(gpus(req.gpu!));
  if ((req.memMb ?? 0) > cap.memMb) out.push(`${req.memMb} MB of memory`);
  return out;
}

const gpus = (n: number) => `${n} GPU${n === 1 ? '' : 's'}`;

/**
 * Why no live node can take the job, or null when one can. `nodes` are the
 * live nodes that handle its type. The reason names the unmet requirement: the
 * one no node meets at all if there is one, else the combination none meets.
 */
export function pendingReason(req: Requirements | null | undefined, nodes: NodeCapacity[]): string | null {
  if (!req || nodes.some((n) => satisfies(req, n))) return null;
  if (nodes.length === 0) return 'no live node handles its type';
  const missing = nodes.map((n) => unmetOn(req, n));
  const nowhere = missing[0]!.filter((m) => missing.every((x) => x.includes(m)));
  if (nowhere.length > 0) {
    const most = (f: (n: NodeCapacity) => number) => Math.max(...nodes.map(f));
    const detail = (m: string) =>
      m.endsWith('GPU') || m.endsWith('GPUs')
        ? `${m} (most: ${most((n) => n.gpu)})`
        : m.endsWith('of memory')
        ? `${m} (most: ${most((n) => n.memMb)} MB)`
        : m;
    return `no live node has ${nowhere.map(detail).join(' and ')}`;
  }
  return `no live node has all of: ${describeRequirements(req)}`;
}

/** Requirements in words, e.g. `label zone=edge, 1 GPU, 2048 MB of memory`. */
export function describeRequirements(req: Requirements | null | undefined): string {
  if (!req) return 'nothing';
  return [
    ...Object.entries(req.labels ?? {}).map(([k, v]) => `label ${k}=${v}`),
    ...(req.gpu ? [gpus(req.gpu)] : []),
    ...(req.memMb ? [`${req.memMb} MB of memory`] : []),
  ].join(', ') || 'nothing';
}
