// `shoal events`: the event history from the events stream in human form
// (time, node, actor, from → to, event, epoch or attempt), filtered by job,
// node or kind, from a point in time, and followed live with --follow.
import { parseDuration } from '../base/time.ts';
import type { StoredTransition } from '../nats/events.ts';
import { tailTransitions, type Transition } from '../nats/events.ts';
import { type Common, print, withApi } from './client.ts';

export type EventsOptions = Common & { follow?: boolean; job?: string; node?: string; kind?: string; since?: string; json?: boolean };

export const eventKinds = ['node', 'coordinator', 'lease', 'job'] as const;

/** One line per transition: `12:00:01.234 n2 job j7 queued → assigned (job.assign, attempt 1)`. */
export function formatTransition(t: StoredTransition): string {
  const time = new Date(t.wall).toISOString().slice(11, 23);
  const fence = t.epoch === null ? '' : t.kind === 'job' ? `, attempt ${t.epoch}` : `, epoch ${t.epoch}`;
  const facts = t.kind === 'job' && t.data
    ? [
      typeof t.data.progress === 'number' && t.data.progress > 0 ? `progress ${Math.round(t.data.progress * 100)}%` : '',
      t.data.result !== undefined ? `result ${JSON.stringify(t.data.result)}` : '',
    ].filter(Boolean).join(' ')
    : '';
  return `${time} ${t.node.padEnd(6)} ${t.kind.padEnd(11)} ${t.actor.padEnd(12)} ${t.from ?? '∅'} → ${t.to} (${t.event}${fence})${
    facts ? ` ${facts}` : ''
  }`;
}

export function runEvents(options: EventsOptions): Promise<number> {
  if (options.kind && !(eventKinds as readonly string[]).includes(options.kind)) {
    throw new Error(`--kind ${options.kind}: choose ${eventKinds.join(', ')}`);
  }
  if (options.job && options.kind && options.kind !== 'job') {
    throw new Error('--job shows job events: it cannot be combined with another --kind');
  }
  const since = options.since === undefined ? undefined : new Date(Date.now() - parseDuration(options.since, '--since'));
  return withApi(options, async (nc, n) => {
    const filter = (t: Transition) =>
      (!options.job || (t.kind === 'job' && t.actor === options.job)) && (!options.kind || t.kind === options.kind) &&
      (!options.node || t.node === options.node);
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    let count = 0;
    for await (const t of tailTransitions(nc, n, { filter, since, follow: options.follow, signal: stop.signal })) {
      count++;
      print(options.json ? JSON.stringify(t) : formatTransition(t));
    }
    if (!options.follow && count === 0 && !options.json) process.stderr.write('no events match\n');
    return 0;
  });
}
