// Recurring jobs: a schedule names a cron expression (in a time zone) and the
// job to submit at each tick. The leader looks for due ticks every
// `scheduleCheckMs` and submits each tick's job under the id
// `<name>-<tick ms>`, then moves the schedule's last tick by compare-and-swap.
// A submit is idempotent by id, so a tick is submitted exactly once however
// often it is tried: by a leader that died between the submit and the write,
// or by two leaders for a moment. A leader coming back after an outage submits
// the ticks it missed within `scheduleCatchUpMs`; older ones are skipped.
import { Cron } from 'croner';
import type { ParsedRequestOf, ReplyOf, Schedule } from '../api/contract.ts';
import { defaults } from '../base/defaults.ts';
import { ApiError } from '../base/errors.ts';
import { type Clock, realClock } from '../base/time.ts';
import { isCasConflict } from '../store/bucket.ts';
import { ScheduleStore, type StoredSchedule } from '../store/schedule.store.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import { schedulesBucket } from '../nats/bootstrap.ts';
import type { Names } from '../nats/subjects.ts';
import type { WiredNode } from './node.parts.ts';
import { type Endpoint, endpoint } from '../nats/service.ts';
import { badInput, type TypeCatalog } from './input.schemas.ts';
import type { Log } from './log.ts';

/** The expression as croner reads it; throws a 400 naming what is wrong. */
function cronOf(expr: string, timezone: string | null): Cron {
  try {
    const cron = new Cron(expr, { paused: true, ...(timezone ? { timezone } : {}), mode: 'auto' });
    cron.nextRun(); // an unknown time zone is found here
    return cron;
  } catch (err) {
    throw new ApiError(400, 'bad_request', `cron '${expr}'${timezone ? ` in ${timezone}` : ''}: ${(err as Error).message}`);
  }
}

/** The first tick after `after` (wall ms), or null when the expression has no more. */
export function nextTick(s: Pick<StoredSchedule, 'cron' | 'timezone'>, after: number): number | null {
  return cronOf(s.cron, s.timezone).nextRun(new Date(after))?.getTime() ?? null;
}

/** The ticks due at `now`: after the last one (or the schedule's creation), within the catch-up window, oldest first. */
export function dueTicks(s: StoredSchedule, now: number): number[] {
  const cron = cronOf(s.cron, s.timezone);
  const from = Math.max(s.lastTickAt ?? s.createdAt, now - defaults.scheduleCatchUpMs);
  const out: number[] = [];
  for (let t = cron.nextRun(new Date(from)); t && t.getTime() <= now && out.length < defaults.scheduleCatchUpMax; t = cron.nextRun(t)) {
    out.push(t.getTime());
  }
  return out;
}

export const tickJobId = (name: string, tick: number) => `${name}-${tick}`;

function view(s: StoredSchedule): Schedule {
  return { ...s, nextTickAt: s.paused ? null : nextTick(s, s.lastTickAt ?? s.createdAt) };
}

const notFound = (name: string) => new ApiError(404, 'not_found', `no schedule named '${name}'`);

/** `schedules.*`: served by every node, straight from the bucket. */
export function scheduleEndpoints(
  deps: { store: () => Promise<ScheduleStore>; clock: Clock; types?: TypeCatalog },
): Record<string, Endpoint> {
  const { clock } = deps;
  /** Change a schedule by CAS, re-reading on a conflict. */
  const change = async (name: string, f: (s: StoredSchedule) => StoredSchedule): Promise<Schedule> => {
    const store = await deps.store();
    for (;;) {
      const cur = await store.get(name);
      if (!cur) throw notFound(name);
      const next = f(cur.value);
      try {
        await store.update(next, cur.revision);
        return view(next);
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
  };
  return {
    'schedules.add': endpoint('schedules.add', async (req: ParsedRequestOf<'schedules.add'>): Promise<ReplyOf<'schedules.add'>> => {
      const timezone = req.timezone ?? null;
      if (nextTick({ cron: req.cron, timezone }, clock.now()) === null) {
        throw new ApiError(400, 'bad_request', `cron '${req.cron}' has no tick after now`);
      }
      const problems = await deps.types?.check(req.job.type, req.job.input ?? null);
      if (problems) throw badInput(req.job.type, problems);
      const s: StoredSchedule = {
        name: req.name,
        cron: req.cron,
        timezone,
        job: req.job,
        paused: false,
        createdAt: clock.now(),
        lastTickAt: null,
        fired: 0,
      };
      const store = await deps.store();
      try {
        await store.create(s);
        return view(s);
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        if (!req.replace) throw new ApiError(409, 'conflict', `a schedule named '${req.name}' exists (replace: true, or remove it first)`);
      }
      // Replaced: from now on (no tick before the change is submitted under the new expression).
      return await change(req.name, (cur) => ({ ...s, createdAt: cur.createdAt, fired: cur.fired, lastTickAt: clock.now() }));
    }),
    'schedules.list': endpoint('schedules.list', async () => ({
      schedules: (await (await deps.store()).list()).map((s) => view(s.value)),
    })),
    'schedules.pause': endpoint('schedules.pause', (req) => change(req.name, (s) => ({ ...s, paused: true }))),
    // Ticks that passed while paused are not submitted.
    'schedules.resume': endpoint(
      'schedules.resume',
      (req) => change(req.name, (s) => ({ ...s, paused: false, lastTickAt: s.paused ? clock.now() : s.lastTickAt })),
    ),
    'schedules.remove': endpoint('schedules.remove', async (req) => {
      const store = await deps.store();
      const had = (await store.get(req.name)) !== null;
      if (had) await store.delete(req.name);
      return { name: req.name, removed: had };
    }),
  };
}

/**
 * The leader's schedule pass, every `scheduleCheckMs` while `leading()`: each due tick's job submitted (by
 * id), then the schedule's last tick moved by CAS. A submit that fails stops that schedule for this pass.
 */
export function scheduleTicker(deps: {
  store: () => Promise<ScheduleStore>;
  submit: (req: ParsedRequestOf<'jobs.submit'>) => Promise<{ created: boolean }>;
  leading: () => boolean;
  clock: Clock;
  log: Log;
}): () => void {
  const { clock } = deps;
  let busy = false;
  const pass = async () => {
    if (busy || !deps.leading()) return;
    busy = true;
    try {
      const store = await deps.store();
      for (const { value: s, revision } of await store.list()) {
        if (s.paused || !deps.leading()) continue;
        let last = s.lastTickAt;
        let fired = 0;
        for (const tick of dueTicks(s, clock.now())) {
          try {
            const r = await deps.submit({ ...s.job, id: tickJobId(s.name, tick) });
            last = tick;
            if (r.created) fired++;
          } catch (err) {
            deps.log(`schedule ${s.name}: the tick at ${new Date(tick).toISOString()} could not be submitted (${(err as Error).message})`);
            break;
          }
        }
        if (last === s.lastTickAt) continue;
        await store.update({ ...s, lastTickAt: last, fired: s.fired + fired }, revision).catch((err) => {
          if (!isCasConflict(err)) deps.log(`schedule ${s.name}: ${(err as Error).message}`); // moved by another: its ids dedupe
        });
      }
    } catch (err) {
      deps.log(`schedules: ${(err as Error).message}`);
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void pass(), defaults.scheduleCheckMs);
  return () => clearInterval(timer);
}

/** A node's part in scheduling: the `schedules.*` endpoints, and the ticker that acts while it leads. */
export function nodeSchedules(
  nc: NatsConnection,
  n: Names,
  replicas: number,
  deps: { node: WiredNode; types: TypeCatalog; log: Log },
): { endpoints: Record<string, Endpoint>; stop: () => void } {
  let opened: Promise<ScheduleStore> | null = null;
  const store = () => {
    // Opened on first use (created by the first node that needs it); a failure is tried again next time.
    opened ??= schedulesBucket(nc, n, replicas).then((b) => new ScheduleStore(b), (err) => {
      opened = null;
      throw err;
    });
    return opened;
  };
  // The node's own submit endpoint: validated, then to the dispatcher like any submit.
  const submit = deps.node.api['jobs.submit']!.handle as (req: unknown) => Promise<{ created: boolean }>;
  const stop = scheduleTicker({
    store,
    submit: (req) => submit(req),
    leading: () => deps.node.leading(),
    clock: realClock,
    log: deps.log,
  });
  return { endpoints: scheduleEndpoints({ store, clock: realClock, types: deps.types }), stop };
}
