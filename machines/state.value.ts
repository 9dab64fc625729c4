// An XState state value as the history writes it: `running.member.ready`;
// parallel regions joined by commas. Pure, so the inspector's page uses it too.
import type { StateValue } from 'xstate';

/** `{running: {member: 'ready'}}` → `running.member.ready`. */
export function stateString(value: StateValue): string {
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map((
      [k, v],
    ) => (v === undefined || (typeof v === 'object' && Object.keys(v).length === 0) ? k : `${k}.${stateString(v as StateValue)}`))
    .join(',');
}
