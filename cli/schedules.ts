// `shoal schedule …`: recurring jobs over the public API (node/schedules.ts runs them).
import Table from 'cli-table3';
import type { Schedule } from '../api/contract.ts';
import { callApi } from '../nats/client.ts';
import { type Common, print, withApi } from './client.ts';
import { parseInput } from './jobs.ts';

const when = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString());

function describe(s: Schedule): string {
  const state = s.paused ? 'paused' : `next ${when(s.nextTickAt)}`;
  return `${s.name}  ${s.cron}${s.timezone ? ` (${s.timezone})` : ''}  → ${s.job.type}  ${state}  fired ${s.fired}`;
}

export async function runScheduleAdd(
  name: string,
  o: Common & {
    cron: string;
    tz?: string;
    type: string;
    input?: string;
    priority?: number;
    maxAttempts?: number;
    timeout?: number;
    replace?: boolean;
    json?: boolean;
  },
): Promise<number> {
  return withApi(o, async (nc, n) => {
    const input = parseInput(o.input);
    const s = await callApi(nc, n, 'schedules.add', {
      name,
      cron: o.cron,
      timezone: o.tz,
      replace: o.replace,
      job: {
        type: o.type,
        ...(input !== undefined ? { input: input as never } : {}),
        priority: o.priority,
        maxAttempts: o.maxAttempts,
        timeoutMs: o.timeout,
      },
    });
    print(o.json ? JSON.stringify(s, null, 2) : describe(s));
    return 0;
  });
}

export async function runScheduleList(o: Common & { json?: boolean }): Promise<number> {
  return withApi(o, async (nc, n) => {
    const { schedules } = await callApi(nc, n, 'schedules.list');
    if (o.json) {
      print(JSON.stringify(schedules, null, 2));
      return 0;
    }
    const t = new Table({
      head: ['name', 'cron', 'zone', 'job', 'state', 'last tick', 'next tick', 'fired'],
      style: { head: [], border: [] },
    });
    for (const s of schedules) {
      t.push([
        s.name,
        s.cron,
        s.timezone ?? 'UTC',
        s.job.type,
        s.paused ? 'paused' : 'active',
        when(s.lastTickAt),
        when(s.nextTickAt),
        s.fired,
      ]);
    }
    print(schedules.length ? t.toString() : 'no schedules');
    return 0;
  });
}

export async function runScheduleChange(
  verb: 'pause' | 'resume' | 'remove',
  name: string,
  o: Common & { json?: boolean },
): Promise<number> {
  return withApi(o, async (nc, n) => {
    if (verb === 'remove') {
      const r = await callApi(nc, n, 'schedules.remove', { name });
      print(o.json ? JSON.stringify(r) : r.removed ? `${name} removed` : `no schedule named '${name}'`);
      return r.removed ? 0 : 1;
    }
    const s = await callApi(nc, n, verb === 'pause' ? 'schedules.pause' : 'schedules.resume', { name });
    print(o.json ? JSON.stringify(s, null, 2) : describe(s));
    return 0;
  });
}
