// Schedules in their own bucket, one key each (`schedule.<name>`), every
// change a compare-and-swap on the revision read: two leaders for a moment
// cannot both move a schedule's last tick.
import type { Schedule } from '../api/contract.ts';
import { scheduleSchema } from '../api/contract.ts';
import type { Bucket } from './bucket.ts';
import { decode, encode } from './codec.ts';
import type { Versioned } from './job.store.ts';
import { keys } from './keys.ts';

/** What the bucket holds: a schedule less what is computed when it is read. */
export type StoredSchedule = Omit<Schedule, 'nextTickAt'>;
const storedSchema = scheduleSchema.omit({ nextTickAt: true });

export class ScheduleStore {
  readonly kv: Bucket;
  constructor(kv: Bucket) {
    this.kv = kv;
  }

  async get(name: string): Promise<Versioned<StoredSchedule> | null> {
    const e = await this.kv.get(keys.schedule(name));
    return e ? { value: decode(storedSchema, e.value, `schedule ${name}`), revision: e.revision } : null;
  }

  async list(): Promise<Array<Versioned<StoredSchedule>>> {
    const names = (await this.kv.keys(keys.schedules)).map((k) => k.slice(keys.schedule('').length));
    const all = await Promise.all(names.map((name) => this.get(name)));
    return all.filter((s): s is Versioned<StoredSchedule> => s !== null).sort((a, b) => (a.value.name < b.value.name ? -1 : 1));
  }

  /** Refused (a CAS conflict) when the name is taken. */
  create(s: StoredSchedule): Promise<number> {
    return this.kv.create(keys.schedule(s.name), encode(s));
  }

  /** Refused (a CAS conflict) when it changed since `revision`. */
  update(s: StoredSchedule, revision: number): Promise<number> {
    return this.kv.update(keys.schedule(s.name), encode(s), revision);
  }

  /** Gone for good: the marker left behind expires where the server allows (Bucket.purge). */
  delete(name: string): Promise<void> {
    return this.kv.purge(keys.schedule(name));
  }
}
