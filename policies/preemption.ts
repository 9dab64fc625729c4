// Preemption as a policy: which running job gives its slot to a queued job of
// strictly higher priority. Pure: the leader's placement loop (node/) calls
// it with the records its index holds.
import { lastAttempt } from '../machines/job.machine.ts';
import type { JobRecord } from '../api/contract.ts';

export type PreemptionRules = {
  /** Off: a queued job waits for a slot to free, whatever its priority. */
  enabled: boolean;
  /** A victim's handler may still checkpoint this long before its attempt ends. */
  graceMs: number;
  /** A job preempted this many times is not preempted again until `cooldownMs` after its last preemption. */
  maxPreemptions: number;
  cooldownMs: number;
};

/** On, with the defaults' grace (1 s), limit (3) and cooldown (30 s). */
export const defaultPreemption: PreemptionRules = {
  enabled: true,
  graceMs: 1_000,
  maxPreemptions: 3,
  cooldownMs: 30_000,
};

/** Whether the rules let this running job be preempted now (anti-thrash). */
export function preemptible(r: JobRecord, now: number, rules: PreemptionRules): boolean {
  if (r.state !== 'running') return false;
  return !(r.preemptions >= rules.maxPreemptions && r.preemptedAt !== null && now - r.preemptedAt < rules.cooldownMs);
}

/** Work a preemption would lose: ms since its attempt's last checkpoint (or its start). */
export function workAtRisk(r: JobRecord, now: number): number {
  const since = Math.max(r.checkpointedAt ?? 0, lastAttempt(r)?.startedAt ?? 0);
  return Math.max(0, now - since);
}

/**
 * The victim for a queued job, or null: among running jobs of strictly lower
 * (base) priority that the rules allow and `fits` accepts (its node can run
 * the queued job), the lowest priority; among those, the one that loses least
 * (most recent checkpoint, least work since).
 */
export function chooseVictim(
  urgent: Pick<JobRecord, 'priority'>,
  running: Iterable<JobRecord>,
  now: number,
  rules: PreemptionRules,
  fits: (victim: JobRecord) => boolean,
): JobRecord | null {
  let best: JobRecord | null = null;
  for (const r of running) {
    if (r.priority >= urgent.priority || !preemptible(r, now, rules) || !fits(r)) continue;
    if (!best || r.priority < best.priority || (r.priority === best.priority && workAtRisk(r, now) < workAtRisk(best, now))) best = r;
  }
  return best;
}
