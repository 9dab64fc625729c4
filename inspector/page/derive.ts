// What the page derives from what it was sent: job rows from the timeline for
// a replay without records.
import type { JobRow, JobRows } from '../jobs.ts';
import type { Timeline } from '../model.ts';

/** Jobs the timeline has but no record does (a replay of events only): a row from their transitions. */
export function rowsFromTimeline(timeline: Timeline, rows: JobRows): JobRow[] {
  const out: JobRow[] = [];
  for (const a of timeline.actors()) {
    if (a.kind !== 'job' || rows.get(a.actor)) continue;
    const first = timeline.event(a.steps[0]!)!;
    const last = timeline.event(a.steps.at(-1)!)!;
    out.push({
      id: a.actor,
      type: '?',
      state: last.to,
      owner: last.node,
      priority: 0,
      attempt: last.epoch ?? 0,
      progress: 0,
      createdAt: first.wall,
      updatedAt: last.wall,
      error: null,
      pendingReason: null,
    });
  }
  return out;
}
