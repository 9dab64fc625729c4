// The simulation's link and role faults: partitions, lost, duplicated, delayed
// and slow messages on one node's link, and faults aimed at whoever holds a
// role when they run (the dispatcher, its standby, the leader).
import { type Fault, type SimPartitionMode } from '../faults.ts';
import { down, NodeCommand, RoleCommand, type SimModel, type SimReal } from './commands.base.ts';

/**
 * Cut the node off: `blackhole` holds every byte both ways until healed (or
 * until the server gives up on it, ~6 s); `reset` kills the connection now
 * and refuses reconnects until healed.
 */
export class Partition extends NodeCommand {
  readonly mode: SimPartitionMode;
  constructor(i: number, mode: SimPartitionMode) {
    super(i);
    this.mode = mode;
  }
  fault(): Fault {
    return { kind: 'partition', node: this.i, mode: this.mode };
  }
  override check(m: Readonly<SimModel>) {
    return super.check(m) && !m.split[this.i];
  }
  apply(m: SimModel, r: SimReal) {
    m.split[this.i] = true;
    return r.world.partition(this.i, this.mode);
  }
}

/** End a partition. */
export class Heal extends NodeCommand {
  fault(): Fault {
    return { kind: 'heal', node: this.i };
  }
  override readonly counts = false;
  override check(m: Readonly<SimModel>) {
    return super.check(m) && m.split[this.i]!;
  }
  apply(m: SimModel, r: SimReal) {
    m.split[this.i] = false;
    return r.world.heal(this.i);
  }
}

/**
 * The node's next `count` KV requests are lost before the server applies them
 * (`requests`), or their replies after it applied them (`replies`: the ambiguous outcome).
 */
export class Drop extends NodeCommand {
  readonly what: 'requests' | 'replies';
  readonly count: number;
  constructor(i: number, what: 'requests' | 'replies', count: number) {
    super(i);
    this.what = what;
    this.count = count;
  }
  fault(): Fault {
    return { kind: this.what === 'requests' ? 'drop-requests' : 'drop-replies', node: this.i, count: this.count };
  }
  apply(_m: SimModel, r: SimReal) {
    return r.world.faultLink(this.i, (c) => {
      if (this.what === 'requests') c.dropRequests += this.count;
      else c.dropReplies += this.count;
    });
  }
}

/** The next bus message to the node (offer, assignment, cancel) arrives twice. */
export class Duplicate extends NodeCommand {
  fault(): Fault {
    return { kind: 'duplicate', node: this.i };
  }
  apply(_m: SimModel, r: SimReal) {
    return r.world.faultLink(this.i, (c) => void (c.duplicates += 1));
  }
}

/** The node's next `count` core messages (assignments, intakes) are lost, each before or after it is handled. */
export class DropMessages extends NodeCommand {
  readonly count: number;
  constructor(i: number, count: number) {
    super(i);
    this.count = count;
  }
  fault(): Fault {
    return { kind: 'drop-messages', node: this.i, count: this.count };
  }
  apply(_m: SimModel, r: SimReal) {
    return r.world.faultLink(this.i, (c) => void (c.dropMessages += this.count));
  }
}

/** The node's next core message (an assignment or an intake it sends) is held back: later ones overtake it. */
export class DelayMessage extends NodeCommand {
  readonly ms: number;
  constructor(i: number, ms: number) {
    super(i);
    this.ms = ms;
  }
  fault(): Fault {
    return { kind: 'delay-messages', node: this.i, delayMs: this.ms };
  }
  apply(_m: SimModel, r: SimReal) {
    return r.world.faultLink(this.i, (c) => void c.delayMessages.push(this.ms));
  }
}

/** Extra latency on the node's link: its messages are overtaken by everyone else's. */
export class Latency extends NodeCommand {
  readonly ms: number;
  constructor(i: number, ms: number) {
    super(i);
    this.ms = ms;
  }
  fault(): Fault {
    return { kind: 'latency', node: this.i, delayMs: this.ms };
  }
  apply(_m: SimModel, r: SimReal) {
    return r.world.faultLink(this.i, (c) => void (c.slowMs = this.ms));
  }
}

/** The dispatcher dies between committing records and sending their assignments (armed now, fires at its next send). */
export class CrashDispatcher extends RoleCommand {
  fault(): Fault {
    return { kind: 'crash-dispatcher' };
  }
  async hit(m: SimModel, r: SimReal) {
    const i = r.world.crashDispatcher();
    if (i !== null) down(m, i);
    return i;
  }
}

/** SIGKILL of the warm standby the leader lease names. */
export class KillStandby extends RoleCommand {
  fault(): Fault {
    return { kind: 'kill-standby' };
  }
  async hit(m: SimModel, r: SimReal) {
    const i = await r.world.standbyIndex();
    if (i !== null && r.world.kill(i)) down(m, i);
    return i;
  }
}

/** SIGSTOP of the leader: once its lease is gone, a resume makes it a stale dispatcher. */
export class PauseLeader extends RoleCommand {
  fault(): Fault {
    return { kind: 'pause-leader' };
  }
  async hit(m: SimModel, r: SimReal) {
    const i = r.world.leaderIndex();
    if (i === null || m.paused[i] || !r.world.pause(i)) return null;
    m.paused[i] = true;
    return i;
  }
}
