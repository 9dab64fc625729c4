// What every simulation command shares: the model fast-check checks commands
// against, the system under test, and the two fault shapes (one aimed at a
// node, one at a role such as the leader or its standby). The commands
// themselves are in commands.ts (jobs, time, processes) and commands.faults.ts
// (links and roles).
import type fc from 'fast-check';
import { describeFault, type Fault, nodeName } from '../faults.ts';
import type { SimWorld } from './world.ts';

export type SimModel = {
  nodes: number;
  state: Array<'up' | 'down'>;
  paused: boolean[];
  split: boolean[];
  submitted: Set<string>;
};

/** The system under test plus what the run did (for the report). */
export type SimReal = {
  world: SimWorld;
  /** Commands that ran, as log lines. */
  executed: string[];
  /** Faults injected, by kind. */
  faults: Record<string, number>;
};

export type SimCommand = fc.AsyncCommand<SimModel, SimReal>;

export function initialModel(nodes: number): SimModel {
  return {
    nodes,
    state: Array.from({ length: nodes }, () => 'up' as const),
    paused: Array.from({ length: nodes }, () => false),
    split: Array.from({ length: nodes }, () => false),
    submitted: new Set(),
  };
}

const isUp = (m: SimModel, i: number) => i < m.nodes && m.state[i] === 'up';

export function note(r: SimReal, line: string, fault?: string): void {
  r.executed.push(line);
  if (fault) r.faults[fault] = (r.faults[fault] ?? 0) + 1;
}

/** A fault on one node that is up (the shared vocabulary of chaos/faults.ts). */
export abstract class NodeCommand implements SimCommand {
  readonly i: number;
  constructor(i: number) {
    this.i = i;
  }
  /** The fault as data: its kind names it in logs and reports. */
  abstract fault(): Fault;
  /** Counted as an injected fault (resume and heal end one). */
  readonly counts: boolean = true;
  check(m: Readonly<SimModel>): boolean {
    return isUp(m as SimModel, this.i);
  }
  abstract apply(m: SimModel, r: SimReal): boolean;
  async run(m: SimModel, r: SimReal) {
    const did = this.apply(m, r);
    note(r, `${this.toString()}${did ? '' : ' (no effect)'}`, did && this.counts ? this.fault().kind : undefined);
    await r.world.clock.settle();
  }
  toString() {
    return describeFault(this.fault());
  }
}

export const down = (m: SimModel, i: number) => {
  m.state[i] = 'down';
  m.paused[i] = false;
  m.split[i] = false;
};

/** A fault aimed at a role (the leader, its standby) rather than a node: who it hits is decided when it runs. */
export abstract class RoleCommand implements SimCommand {
  abstract fault(): Fault;
  check = (m: Readonly<SimModel>) => m.state.some((s) => s === 'up');
  /** Inject; returns the node hit, or null when nobody holds the role now. */
  abstract hit(m: SimModel, r: SimReal): Promise<number | null>;
  async run(m: SimModel, r: SimReal) {
    const i = await this.hit(m, r);
    note(r, `${this.toString()}${i === null ? ' (none)' : ` (${nodeName(i)})`}`, i === null ? undefined : this.fault().kind);
    await r.world.clock.settle();
  }
  toString() {
    return describeFault(this.fault());
  }
}
