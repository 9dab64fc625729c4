// The simulation's commands for fast-check's `fc.commands`: one small class per
// command, each with a `toString()` that reads like a log line, so a shrunk
// failure is a story (`submit(j1 sum 30 via n1), pause(n1), expire-leases, resume(n1)`).
// Faults carry the names of the shared vocabulary (chaos/faults.ts).
// The model holds only what `check()` needs: which nodes are up, paused, cut
// off, and which job ids were submitted.
import fc from 'fast-check';
import { defaults } from '../../base/defaults.ts';
import { describeFault, type Fault, nodeName } from '../faults.ts';
import { down, NodeCommand, note, type SimCommand, type SimModel, type SimReal } from './commands.base.ts';
import {
  CrashDispatcher,
  DelayMessage,
  Drop,
  DropMessages,
  Duplicate,
  Heal,
  KillStandby,
  Latency,
  Partition,
  PauseLeader,
} from './commands.faults.ts';

export * from './commands.base.ts';
export * from './commands.faults.ts';

/** Let virtual time pass: timers fire, messages arrive. */
export class Advance implements SimCommand {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
  check = () => true;
  async run(_m: SimModel, r: SimReal) {
    note(r, this.toString());
    await r.world.advance(this.ms);
  }
  toString() {
    return `advance(${this.ms}ms)`;
  }
}

/** Jump past the lease TTL: everyone keeps running, so only leases nobody renewed (paused, cut off) expire. */
export class ExpireLeases implements SimCommand {
  check = () => true;
  async run(_m: SimModel, r: SimReal) {
    note(r, this.toString());
    await r.world.advance(r.world.options.ttlMs + 1);
  }
  toString() {
    return 'expire-leases';
  }
}

export class Submit implements SimCommand {
  readonly id: string;
  /** `rare`: a `sum` only one node handles (the GPU node): while it is down, the type is missing. */
  readonly type: 'sum' | 'fail' | 'rare';
  readonly n: number;
  readonly every: number;
  readonly via: number;
  /** A priority mix makes preemptions; a GPU job runs only on the one node with a GPU (`simGpuNode`). */
  readonly priority: number;
  readonly gpu: boolean;
  constructor(
    id: string,
    type: 'sum' | 'fail' | 'rare',
    n: number,
    every: number,
    via: number,
    priority: number = defaults.priority,
    gpu = false,
  ) {
    this.id = id;
    this.type = type;
    this.n = n;
    this.every = every;
    this.via = via;
    this.priority = priority;
    this.gpu = gpu;
  }
  check = (m: Readonly<SimModel>) => !m.submitted.has(this.id) && this.via < m.nodes;
  async run(m: SimModel, r: SimReal) {
    m.submitted.add(this.id);
    const accepted = r.world.submit({
      id: this.id,
      type: this.type,
      input: this.type === 'fail' ? {} : { n: this.n, every: this.every },
      priority: this.priority,
      maxAttempts: defaults.maxAttempts,
      timeoutMs: 60_000,
      requires: this.gpu ? { gpu: 1 } : null,
    }, this.via);
    note(r, `${this.toString()}${accepted ? '' : ' (no node to take it)'}`);
    await r.world.clock.settle();
  }
  toString() {
    const extra = `${this.priority === defaults.priority ? '' : ` p${this.priority}`}${this.gpu ? ' gpu' : ''}`;
    return `submit(${this.id} ${this.type === 'fail' ? 'fail' : `${this.type} ${this.n}/${this.every}`}${extra} via ${nodeName(this.via)})`;
  }
}

export class Cancel implements SimCommand {
  readonly id: string;
  readonly via: number;
  constructor(id: string, via: number) {
    this.id = id;
    this.via = via;
  }
  check = (m: Readonly<SimModel>) => m.submitted.has(this.id) && this.via < m.nodes;
  async run(_m: SimModel, r: SimReal) {
    note(r, this.toString());
    r.world.cancel(this.id, this.via);
    await r.world.clock.settle();
  }
  toString() {
    return `cancel(${this.id} via ${nodeName(this.via)})`;
  }
}

/** SIGKILL. */
export class Kill extends NodeCommand {
  fault(): Fault {
    return { kind: 'kill', node: this.i };
  }
  apply(m: SimModel, r: SimReal) {
    down(m, this.i);
    return r.world.kill(this.i);
  }
}

/** SIGKILL of whichever process leads right now. */
export class KillLeader implements SimCommand {
  check = (m: Readonly<SimModel>) => m.state.some((s) => s === 'up');
  async run(m: SimModel, r: SimReal) {
    const i = r.world.leaderIndex();
    if (i !== null) {
      down(m, i);
      r.world.kill(i);
    }
    note(r, `kill-leader${i === null ? ' (none)' : ` (${nodeName(i)})`}`, i === null ? undefined : 'kill-leader');
    await r.world.clock.settle();
  }
  toString() {
    return describeFault({ kind: 'kill-leader' });
  }
}

/** The supervisor starts a dead node again (a new instance). */
export class Restart extends NodeCommand {
  fault(): Fault {
    return { kind: 'restart', node: this.i };
  }
  override check(m: Readonly<SimModel>) {
    return this.i < m.nodes && m.state[this.i] === 'down';
  }
  apply(m: SimModel, r: SimReal) {
    m.state[this.i] = 'up';
    return r.world.restart(this.i);
  }
}

/** SIGSTOP: the clock and the KV keep running, the process does not. */
export class Pause extends NodeCommand {
  fault(): Fault {
    return { kind: 'pause', node: this.i };
  }
  override check(m: Readonly<SimModel>) {
    return super.check(m) && !m.paused[this.i];
  }
  apply(m: SimModel, r: SimReal) {
    m.paused[this.i] = true;
    return r.world.pause(this.i);
  }
}

/** SIGCONT: overdue timers fire at once. */
export class Resume extends NodeCommand {
  fault(): Fault {
    return { kind: 'resume', node: this.i };
  }
  override readonly counts = false;
  override check(m: Readonly<SimModel>) {
    return super.check(m) && m.paused[this.i]!;
  }
  apply(m: SimModel, r: SimReal) {
    m.paused[this.i] = false;
    return r.world.resume(this.i);
  }
}

/** SIGTERM: hand jobs back, step down, release, exit. */
export class Drain extends NodeCommand {
  fault(): Fault {
    return { kind: 'drain', node: this.i };
  }
  apply(m: SimModel, r: SimReal) {
    down(m, this.i);
    return r.world.drain(this.i);
  }
}

export type CommandShape = {
  maxNodes: number;
  maxJobs: number;
  maxCommands: number;
  /** fast-check's hint for replaying a shrunk command list (with the failure's seed and path). */
  replayPath?: string;
};

/** Every command, weighted so that time passes often and faults are common. */
export function simCommands(s: CommandShape) {
  const node = fc.nat({ max: s.maxNodes - 1 });
  const jobId = fc.integer({ min: 1, max: s.maxJobs }).map((k) => `j${k}`);
  const advance = fc.integer({ min: 10, max: 1_500 }).map((ms) => new Advance(ms));
  const submit = fc.record({
    id: jobId,
    type: fc.constantFrom<'sum' | 'fail' | 'rare'>('sum', 'sum', 'sum', 'fail', 'rare'),
    n: fc.integer({ min: 3, max: 60 }),
    every: fc.constantFrom(2, 5, 10),
    via: node,
    priority: fc.constantFrom(1, 5, 5, 9),
    gpu: fc.constantFrom(false, false, false, true),
  }).map((x) => new Submit(x.id, x.type, x.n, x.every, x.via, x.priority, x.gpu));
  const arbs: Array<fc.Arbitrary<SimCommand>> = [
    advance,
    advance,
    advance,
    advance,
    fc.constant(new ExpireLeases()),
    submit,
    submit,
    submit,
    submit,
    submit,
    fc.tuple(jobId, node).map(([id, via]) => new Cancel(id, via)),
    node.map((i) => new Kill(i)),
    fc.constant(new KillLeader()),
    node.map((i) => new Restart(i)),
    node.map((i) => new Restart(i)),
    node.map((i) => new Pause(i)),
    node.map((i) => new Resume(i)),
    node.map((i) => new Resume(i)),
    node.map((i) => new Partition(i, 'blackhole')),
    node.map((i) => new Partition(i, 'reset')),
    node.map((i) => new Heal(i)),
    node.map((i) => new Heal(i)),
    node.map((i) => new Drain(i)),
    fc.tuple(node, fc.integer({ min: 1, max: 3 })).map(([i, k]) => new Drop(i, 'requests', k)),
    fc.tuple(node, fc.integer({ min: 1, max: 3 })).map(([i, k]) => new Drop(i, 'replies', k)),
    node.map((i) => new Duplicate(i)),
    fc.tuple(node, fc.integer({ min: 1, max: 3 })).map(([i, k]) => new DropMessages(i, k)),
    fc.tuple(node, fc.integer({ min: 50, max: 3_000 })).map(([i, ms]) => new DelayMessage(i, ms)),
    fc.constant(new CrashDispatcher()),
    fc.constant(new KillStandby()),
    fc.constant(new PauseLeader()),
    fc.tuple(node, fc.integer({ min: 5, max: 80 })).map(([i, ms]) => new Latency(i, ms)),
  ];
  return fc.commands(arbs, { maxCommands: s.maxCommands, size: 'max', replayPath: s.replayPath });
}
