// A machine's shape as plain data: its state tree and every transition
// (event, delayed and eventless), with the XState state ids. The inspector
// draws it, `shoal machines export` writes it as diagrams, and the coverage
// test compares it with what the tests reached. Built on `xstate/graph`'s
// traversal of the state nodes.
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition, StateValue } from 'xstate';
import { toDirectedGraph } from 'xstate/graph';
import { coordinatorMachine } from './coordinator.machine.ts';
import { jobMachine } from './job.machine.ts';
import { leaseMachine } from './lease.machine.ts';
import { nodeMachine } from './node.machine.ts';

export type StateInfo = {
  /** The XState state id, e.g. `job.running.computing`. */
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** The initial child's id (compound states). */
  initial: string | null;
  children: StateInfo[];
};

export type EdgeInfo = {
  /** `source|event|guard|targets`: stable across runs, unique per transition. */
  id: string;
  source: string;
  /** Empty for a transition that only runs actions (it stays in `source`). */
  targets: string[];
  /** The event type; delayed ones are `xstate.after.<delay>.<state>`, eventless ones `''`. */
  event: string;
  /** What a person reads: `lease.lost`, `after renewInterval`, `always`. */
  label: string;
  guard: string | null;
};

export type MachineGraph = { id: string; root: StateInfo; edges: EdgeInfo[] };

/** Every machine Shoal runs, by id (the `kind` of its actors). */
export const machines: Record<'node' | 'coordinator' | 'lease' | 'job', AnyStateMachine> = {
  node: nodeMachine,
  coordinator: coordinatorMachine,
  lease: leaseMachine,
  job: jobMachine,
};

function guardName(t: AnyTransitionDefinition): string | null {
  const g = t.guard as unknown;
  if (!g) return null;
  if (typeof g === 'string') return g;
  if (typeof g === 'object' && g !== null && 'type' in g) return String((g as { type: unknown }).type);
  return 'guard';
}

function labelOf(t: AnyTransitionDefinition & { delay?: unknown }): string {
  if (t.eventType === '') return 'always';
  if (t.eventType.startsWith('xstate.after.')) return `after ${String(t.delay ?? t.eventType.split('.')[2])}`;
  if (t.eventType.startsWith('xstate.done.actor.')) return 'done';
  if (t.eventType.startsWith('xstate.error.actor.')) return 'error';
  return t.eventType;
}

/** The id `machineGraph` gives the edge of transition `t` (e.g. one taken in an `@xstate.microstep` inspection event). */
export function edgeIdOf(t: AnyTransitionDefinition): string {
  return edgeOf(t).id;
}

function edgeOf(t: AnyTransitionDefinition): EdgeInfo {
  const targets = (t.target ?? []).map((n: AnyStateNode) => n.id);
  const guard = guardName(t);
  return {
    id: `${t.source.id}|${t.eventType}|${guard ?? ''}|${targets.join(',')}`,
    source: t.source.id,
    targets,
    event: t.eventType,
    label: labelOf(t),
    guard,
  };
}

function stateOf(n: AnyStateNode): StateInfo {
  const initial = n.type === 'compound' ? (n.initial?.target?.[0] as AnyStateNode | undefined)?.id ?? null : null;
  return { id: n.id, key: n.key, type: n.type, initial, children: Object.values(n.states as Record<string, AnyStateNode>).map(stateOf) };
}

/** The state tree and every transition of `machine`. */
export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const edges: EdgeInfo[] = [];
  const walk = (g: ReturnType<typeof toDirectedGraph>) => {
    const node = g.stateNode;
    // `transitions` holds event and delayed transitions; eventless ones sit in `always`.
    for (const ts of node.transitions.values()) for (const t of ts) edges.push(edgeOf(t));
    for (const t of node.always ?? []) edges.push(edgeOf(t));
    g.children.forEach(walk);
  };
  walk(toDirectedGraph(machine));
  const seen = new Set<string>();
  return { id: machine.id, root: stateOf(machine.root), edges: edges.filter((e) => (seen.has(e.id) ? false : (seen.add(e.id), true))) };
}

/** Every state id of a tree, root first. */
export function stateIds(s: StateInfo): string[] {
  return [s.id, ...s.children.flatMap(stateIds)];
}

/** The ids of every state active in `value` (a snapshot's state value), under the machine id. */
export function stateIdsOfValue(machineId: string, value: StateValue): string[] {
  const walk = (prefix: string, v: StateValue): string[] =>
    typeof v === 'string'
      ? [`${prefix}.${v}`]
      : Object.entries(v).flatMap(([k, sub]) => [`${prefix}.${k}`, ...(sub ? walk(`${prefix}.${k}`, sub as StateValue) : [])]);
  return [machineId, ...walk(machineId, value)];
}
