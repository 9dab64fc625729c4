// Statechart layout for the inspector, computed once per machine by elkjs
// (the Eclipse Layout Kernel): compound states become nested boxes, every
// transition between two states an edge routed around them, with its label.
// The page only draws what this returns (absolute coordinates).
import ElkBundled from 'elkjs/lib/elk.bundled.js';
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import { type MachineGraph, type StateInfo } from '../machines/graph.ts';

export type StateBox = {
  id: string;
  key: string;
  x: number;
  y: number;
  w: number;
  h: number;
  compound: boolean;
  final: boolean;
  initial: boolean;
};
export type EdgeLine = { id: string; label: string; points: Array<[number, number]>; labelAt: [number, number] | null };
export type ChartLayout = { machine: string; width: number; height: number; states: StateBox[]; edges: EdgeLine[] };

/** The bundled build (no web worker; runs in Node) exports its constructor as the CommonJS module itself. */
const ELK = ElkBundled as unknown as new () => { layout(graph: ElkNode): Promise<ElkNode> };

const charW = 7;
const leafH = 26;
const textW = (s: string) => Math.ceil(s.length * charW) + 18;

function elkNode(s: StateInfo): ElkNode {
  if (s.children.length === 0) return { id: s.id, width: Math.max(56, textW(s.key)), height: leafH };
  return {
    id: s.id,
    layoutOptions: { 'elk.padding': '[top=26,left=10,bottom=10,right=10]' },
    children: s.children.map(elkNode),
  };
}

/** Lay a machine out; transitions from the machine itself (from any state) and self-loops are left out of the drawing. */
export async function layoutMachine(g: MachineGraph): Promise<ChartLayout> {
  const infos = new Map<string, StateInfo>();
  const initials = new Set<string>();
  const walk = (s: StateInfo) => {
    infos.set(s.id, s);
    if (s.initial) initials.add(s.initial);
    s.children.forEach(walk);
  };
  walk(g.root);
  const edges: ElkExtendedEdge[] = [];
  for (const e of g.edges) {
    if (e.source === g.id) continue;
    for (const t of e.targets) {
      if (t === e.source || !infos.has(t)) continue;
      // `timeout`, not `job.timeout`, inside the job chart: narrower labels, a narrower chart.
      const event = e.label.startsWith(`${g.id}.`) ? e.label.slice(g.id.length + 1) : e.label;
      const label = `${event}${e.guard ? ` [${e.guard}]` : ''}`;
      edges.push({
        id: `${e.id}>${t}`,
        sources: [e.source],
        targets: [t],
        labels: [{ text: label, width: textW(label) - 10, height: 14 }],
      });
    }
  }
  const root: ElkNode = {
    id: g.id,
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'POLYLINE',
      'elk.layered.spacing.nodeNodeBetweenLayers': '34',
      'elk.spacing.nodeNode': '18',
      'elk.spacing.edgeLabel': '4',
      'elk.padding': '[top=8,left=8,bottom=8,right=8]',
    },
    children: g.root.children.map(elkNode),
    edges,
  };
  const out = await new ELK().layout(root);
  // Children are placed relative to their parent, edges relative to their container: make both absolute.
  const origin = new Map<string, [number, number]>([[g.id, [0, 0]]]);
  const states: StateBox[] = [];
  const place = (n: ElkNode, ox: number, oy: number) => {
    const x = ox + (n.x ?? 0);
    const y = oy + (n.y ?? 0);
    origin.set(n.id, [x, y]);
    const info = infos.get(n.id)!;
    states.push({
      id: n.id,
      key: info.key,
      x,
      y,
      w: n.width ?? 0,
      h: n.height ?? 0,
      compound: info.children.length > 0,
      final: info.type === 'final',
      initial: initials.has(n.id),
    });
    (n.children ?? []).forEach((c) => place(c, x, y));
  };
  (out.children ?? []).forEach((c: ElkNode) => place(c, 0, 0));
  const lines: EdgeLine[] = [];
  const collect = (n: ElkNode) => {
    for (const e of (n.edges ?? []) as Array<ElkExtendedEdge & { container?: string }>) {
      const [ox, oy] = origin.get(e.container ?? n.id) ?? [0, 0];
      const sec = e.sections?.[0];
      if (!sec) continue;
      const points: Array<[number, number]> = [sec.startPoint, ...(sec.bendPoints ?? []), sec.endPoint].map((p) => [ox + p.x, oy + p.y]);
      const l = e.labels?.[0];
      lines.push({ id: e.id, label: l?.text ?? '', points, labelAt: l ? [ox + (l.x ?? 0), oy + (l.y ?? 0) + 10] : null });
    }
    (n.children ?? []).forEach(collect);
  };
  collect(out);
  return { machine: g.id, width: out.width ?? 0, height: out.height ?? 0, states, edges: lines };
}
