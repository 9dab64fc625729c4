// The real fault injector: one small function per fault of the shared
// vocabulary (chaos/faults.ts) that a real run can inject, acting on processes
// (signals), nats-servers and the per-node TCP proxies. Each says whether it
// found something to act on; timed faults schedule their own end.
import type { ChaosCluster, Slot } from './cluster.ts';
import type { RealFault } from './schedule.ts';

type Injector<K extends RealFault['kind']> = (c: ChaosCluster, f: Extract<RealFault, { kind: K }>) => Promise<boolean>;

const slot = (c: ChaosCluster, node: number): Slot => c.slots[node]!;

/** Cut every link of a node; heal after `ms`. */
function partition(c: ChaosCluster, s: Slot, f: { mode: 'reset' | 'blackhole' | 'drop'; ms: number }): boolean {
  s.proxies.forEach((p) => p.cut(f.mode));
  c.timeline.later(f.ms, () => s.proxies.forEach((p) => p.heal()));
  return true;
}

const injectors: { [K in RealFault['kind']]: Injector<K> } = {
  async kill(c, f) {
    const s = slot(c, f.node);
    if (!s.proc.running) return false;
    c.noteKill(s);
    await s.proc.kill();
    return true;
  },
  async 'kill-leader'(c) {
    const s = await c.leaderSlot();
    if (!s) return false;
    c.noteKill(s);
    await s.proc.kill();
    return true;
  },
  async 'kill-standby'(c) {
    const s = await c.standbySlot();
    if (!s) return false;
    c.noteKill(s);
    await s.proc.kill();
    return true;
  },
  async 'pause-leader'(c, f) {
    const s = await c.leaderSlot();
    if (!s) return false;
    const proc = s.proc;
    proc.pause();
    c.timeline.later(f.ms, () => proc.resume());
    return true;
  },
  async restart(c, f) {
    const s = slot(c, f.node);
    if (s.proc.running) return false;
    s.proc = c.spawn(s);
    return true;
  },
  async pause(c, f) {
    const proc = slot(c, f.node).proc;
    if (!proc.running) return false;
    proc.pause();
    c.timeline.later(f.ms, () => proc.resume());
    return true;
  },
  async partition(c, f) {
    return partition(c, slot(c, f.node), f);
  },
  async 'partition-leader'(c, f) {
    const s = await c.leaderSlot();
    return s ? partition(c, s, f) : false;
  },
  async latency(c, f) {
    const s = slot(c, f.node);
    s.proxies.forEach((p) => p.setLatency(f.delayMs));
    c.timeline.later(f.ms, () => s.proxies.forEach((p) => p.setLatency(0)));
    return true;
  },
  async 'cut-leaf'(c, f) {
    const link = c.leafLink;
    if (!link) return false;
    link.cut(f.mode);
    c.timeline.later(f.ms, () => link.heal());
    return true;
  },
  /** At most one server down at a time, so a 3-server cluster keeps its quorum. */
  async 'kill-server'(c, f) {
    const cluster = c.cluster;
    if (!cluster || c.downServers > 0) return false;
    c.downServers++;
    await cluster.kill(f.server);
    c.timeline.later(f.ms, async () => {
      await cluster.restart(f.server);
      c.downServers--;
    });
    return true;
  },
};

/** Inject one fault; false when it had nothing to act on (a restart of a live node...). */
export function inject(c: ChaosCluster, f: RealFault): Promise<boolean> {
  return (injectors[f.kind] as Injector<typeof f.kind>)(c, f as never);
}

/** Faults stop: every server runs, every link is healed and fast, every paused process resumes, every dead node starts again (as a supervisor would). */
export async function endFaults(c: ChaosCluster): Promise<void> {
  for (const [i, s] of c.servers.entries()) if (!s.running) await (c.cluster ? c.cluster.restart(i) : s.restart());
  c.downServers = 0;
  for (const s of c.slots) {
    s.proxies.forEach((p) => (p.heal(), p.setLatency(0)));
    s.proc.resume();
    if (!s.proc.running) s.proc = c.spawn(s);
  }
}
