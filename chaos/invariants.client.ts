// The client invariants: what a client was told matches what was committed.
// Judged from the answers the harness recorded (`client.submit`, `client.wait`)
// against the job writes in the history and the final records.
import type { JobRecord } from '../api/contract.ts';
import { type CheckOptions, clientSubmit, clientWait, type History, terminal, type Violation } from './history.ts';

/** Every submit a client was answered for (created, or already there) has a record. */
export function createdHasRecord(h: History, options: CheckOptions): Violation[] {
  const records = new Set((options.records ?? []).map((r) => r.id));
  return h.all.filter((t) => t.event === clientSubmit).flatMap((t) => {
    const id = t.actor;
    if (records.has(id) || (h.jobs.get(id) ?? []).some((w) => w.from === null)) return [];
    return [{
      invariant: 'created-has-record' as const,
      subject: id,
      message: `a client was answered ${JSON.stringify(t.data)} for job ${id}, which has no record`,
      events: [t],
    }];
  });
}

/** What a wait answered about a finished job is its committed final record: state, attempt, result and error. */
export function waitEqualsFinal(h: History, options: CheckOptions): Violation[] {
  if (!options.records) return [];
  const records = new Map(options.records.map((r) => [r.id, r]));
  const facts = (r: Pick<JobRecord, 'state' | 'attempt' | 'result' | 'error'>) =>
    JSON.stringify({ state: r.state, attempt: r.attempt, result: r.result ?? null, error: r.error ?? null });
  return h.all.filter((t) => t.event === clientWait).flatMap((t) => {
    const answered = t.data?.record as JobRecord | undefined;
    if (!answered || !terminal(answered.state)) return [];
    const final = records.get(t.actor);
    if (final && facts(final) === facts(answered)) return [];
    return [{
      invariant: 'wait-equals-final' as const,
      subject: t.actor,
      message: `a wait for job ${t.actor} answered ${facts(answered)}; the committed record is ${final ? facts(final) : 'missing'}`,
      events: [t],
    }];
  });
}
