// The history checker bites: planted violations are each reported, a clean history passes.
import { describe, test } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { checkHistory } from '../../chaos/checker.ts';
import { leaderSeenAt } from '../../chaos/invariants.leaders.ts';
import { newJobRecord } from '../../machines/job.machine.ts';
import type { JobRecord } from '../../api/contract.ts';
import type { Transition } from '../../nats/events.ts';

let wall = 1_000;
let seq = 0;
function ev(
  kind: string,
  actor: string,
  node: string,
  from: string | null,
  to: string,
  event: string,
  epoch: number | null,
  data?: Record<string, unknown>,
): Transition {
  wall += 10;
  return { kind, actor, node, instance: `${node}-i`, pid: 1, from, to, event, epoch, wall, mono: wall, seq: ++seq, data };
}

/** A clean life of job j1: attempt 1 on n1 dies at 60 %, attempt 2 on n2 resumes and succeeds. */
function cleanJob(): Transition[] {
  return [
    ev('coordinator', 'n1', 'n1', 'active.candidate', 'active.leader.recovering', 'lease.acquired', 5),
    ev('job', 'j1', 'n1', null, 'queued', 'job.submit', 0, { input: { limit: 100 } }),
    ev('job', 'j1', 'n1', 'queued', 'assigned', 'job.assign', 1),
    ev('job', 'j1', 'n1', 'assigned', 'running.computing', 'job.start', 1, { resumedFrom: 0 }),
    ev('job', 'j1', 'n1', 'running', 'running', 'job.checkpoint', 1, { progress: 0.6 }),
    ev('coordinator', 'n2', 'n2', 'active.candidate', 'active.leader.recovering', 'lease.acquired', 9),
    ev('job', 'j1', 'n2', 'running.computing', 'queued', 'job.orphan', 1),
    ev('job', 'j1', 'n2', 'queued', 'assigned', 'job.assign', 2),
    ev('job', 'j1', 'n2', 'assigned', 'running.computing', 'job.start', 2, { resumedFrom: 0.6 }),
    ev('job', 'j1', 'n2', 'running.computing', 'succeeded', 'job.succeed', 2, { result: { count: 25 } }),
  ];
}

const record = (over: Partial<JobRecord> = {}): JobRecord => ({
  ...newJobRecord({ id: 'j1', type: 'primes', input: { limit: 100 }, priority: 5, maxAttempts: 3, timeoutMs: 1000 }, 0),
  state: 'succeeded',
  result: { count: 25 },
  ...over,
});
const expected = (
  type: string,
  input: unknown,
) => (type === 'primes' ? { count: (input as { limit: number }).limit === 100 ? 25 : -1 } : undefined);
const invariants = (h: Transition[], records = [record()]) =>
  checkHistory(h, { records, expected, expectAllTerminal: true }).map((v) => v.invariant);

describe('history checker', () => {
  test('a clean history with a migration passes every invariant', () => {
    assert.deepEqual(invariants(cleanJob()), []);
  });

  test('double completion is reported', () => {
    const h = cleanJob();
    h.push(ev('job', 'j1', 'n1', 'running.computing', 'succeeded', 'job.succeed', 1, { result: { count: 25 } }));
    assert.ok(invariants(h).includes('one-terminal-state'));
  });

  test('a lost update (two writes replaced one revision, as on nats-server 2.9.10) is reported; a re-read event is not', () => {
    const withRevisions = cleanJob().map((
      t,
      i,
    ) => (t.kind === 'job' && t.event !== 'job.checkpoint'
      ? { ...t, data: { ...t.data, revision: 10 + i, replaced: i === 1 ? 0 : 9 + i } }
      : t)
    );
    assert.deepEqual(invariants([...withRevisions, withRevisions[2]!]), [], 'the same event read twice is one event');
    const last = withRevisions[withRevisions.length - 1]!;
    const lost = ev('job', 'j1', 'n2', 'running.computing', 'running.computing', 'job.progress', 2, {
      revision: 99,
      replaced: last.data!.replaced,
    });
    const found = checkHistory([...withRevisions, lost], { records: [record()] });
    assert.deepEqual(found.map((v) => v.invariant), ['lost-update']);
    assert.match(
      found[0]!.message,
      /2 writes of job j1 replaced revision \d+ \(job\.succeed by n2 → revision \d+, job\.progress by n2 → revision 99\)/,
    );
  });

  test('a lost checkpoint (resumed below what was committed) is reported', () => {
    const h = cleanJob().map((t) => (t.event === 'job.start' && t.epoch === 2 ? { ...t, data: { resumedFrom: 0.2 } } : t));
    assert.deepEqual(invariants(h), ['resume-from-checkpoint']);
  });

  test('two leaders in one epoch are reported', () => {
    const h = cleanJob();
    h.push(ev('coordinator', 'n3', 'n3', 'active.candidate', 'active.leader.recovering', 'lease.acquired', 9));
    assert.ok(invariants(h).includes('one-leader-per-epoch'));
  });

  test('a stale leader acting after a newer epoch began is reported', () => {
    const h = cleanJob();
    h.push(ev('coordinator', 'n1', 'n1', 'active.leader.placing', 'active.leader.recovering', 'xstate.after', 5));
    assert.ok(invariants(h).includes('stale-leader-acted'));
  });

  test('an unfenced write from an old attempt is reported', () => {
    const h = cleanJob();
    h.splice(h.length - 1, 0, ev('job', 'j1', 'n1', 'running', 'running', 'job.checkpoint', 1, { progress: 0.9 }));
    assert.ok(invariants(h).includes('fenced-writes'));
  });

  test('fencing is judged by commit order (revisions) when the history has it, not by when a paused writer reported', () => {
    // Attempt 2 started at job revision 20 and claimed the checkpoint at revision 7.
    const h = cleanJob().map((t) => (t.event === 'job.start' && t.epoch === 2 ? { ...t, data: { ...t.data, revision: 20 } } : t));
    h.splice(h.length - 1, 0, ev('job', 'j1', 'n2', 'running', 'running', 'job.handler.start', 2, { claimed: 7 }));
    // A zombie reports, late, writes that landed before: not a violation.
    h.push(ev('job', 'j1', 'n1', 'running.computing', 'running.computing', 'job.progress', 1, { progress: 0.7, revision: 19 }));
    h.push(ev('job', 'j1', 'n1', 'running', 'running', 'job.checkpoint', 1, { progress: 0.6, revision: 6 }));
    assert.deepEqual(invariants(h), [], 'landed before attempt 2 began');
    // Writes that landed after, whenever reported, are.
    const late = [...h];
    late.splice(3, 0, ev('job', 'j1', 'n1', 'running.computing', 'running.computing', 'job.progress', 1, { progress: 0.7, revision: 21 }));
    assert.deepEqual(invariants(late), ['fenced-writes']);
    const lateCheckpoint = [...h, ev('job', 'j1', 'n1', 'running', 'running', 'job.checkpoint', 1, { progress: 0.8, revision: 8 })];
    assert.deepEqual(invariants(lateCheckpoint), ['fenced-writes']);
  });

  test('an overwritten or wrong result, and a job left unfinished, are reported', () => {
    assert.deepEqual(invariants(cleanJob(), [record({ result: { count: 26 } })]).sort(), ['result-correct', 'result-kept']);
    assert.deepEqual(invariants(cleanJob(), [record({ state: 'running', result: null })]), ['not-terminal']);
  });

  test('no leader within the bound after the faults stopped is reported; a leader that renews (even mid-pass) is one', () => {
    const h = cleanJob();
    const faultsEndedAt = wall + 100;
    // The leader n2 acted before the faults stopped, and nothing after: dead, or stuck without its lease.
    assert.deepEqual(checkHistory(h, { faultsEndedAt, leaderWithinMs: 1_100 }).map((v) => v.invariant), ['no-leader']);
    wall = faultsEndedAt + 300;
    h.push(
      ev('lease', 'n2-leader', 'n2', 'held.confirmed.renewing', 'held.confirmed.waiting', 'xstate.done.actor', 9, {
        validUntil: wall + 900,
      }),
    );
    assert.equal(leaderSeenAt(h, faultsEndedAt), h.at(-1)!.wall);
    assert.deepEqual(checkHistory(h, { faultsEndedAt, leaderWithinMs: 1_100 }), []);
    assert.deepEqual(checkHistory(h, { faultsEndedAt, leaderWithinMs: 200 }).map((v) => v.invariant), ['no-leader'], 'too late');
  });

  describe('handler overlap', () => {
    /** n1 runs attempt 1 and n2 attempt 2 of j1, both handlers overlapping in time; `n1Lease` shapes n1's lease. */
    function overlap(n1Lease: (h: Transition[]) => void): Transition[] {
      const h: Transition[] = [];
      h.push(ev('lease', 'n1-node', 'n1', 'acquiring', 'held.confirmed.waiting', 'xstate.done.actor', 3, { validUntil: wall + 10_000 }));
      h.push(ev('lease', 'n2-node', 'n2', 'acquiring', 'held.confirmed.waiting', 'xstate.done.actor', 4, { validUntil: wall + 10_000 }));
      h.push(ev('job', 'j1', 'n1', 'running', 'running', 'job.handler.start', 1));
      n1Lease(h);
      h.push(ev('job', 'j1', 'n2', 'running', 'running', 'job.handler.start', 2));
      h.push(ev('job', 'j1', 'n2', 'running', 'running', 'job.handler.end', 2));
      h.push(ev('job', 'j1', 'n1', 'running', 'running', 'job.handler.end', 1));
      return h;
    }
    const kinds = (h: Transition[]) => checkHistory(h).map((v) => v.invariant);

    test('two nodes running one job at once, both leases live, is reported', () => {
      const v = checkHistory(overlap(() => {}));
      assert.deepEqual(v.map((x) => x.invariant), ['handler-overlap']);
      assert.match(v[0]!.message, /n1 \(attempt 1\) and n2 \(attempt 2\)/);
      assert.equal(v[0]!.events.length, 4);
    });

    test("overlap after the old owner's lease expired by its own clock is allowed (a zombie; its writes are fenced)", () => {
      assert.deepEqual(
        kinds(overlap((h) => {
          h.push(
            ev('lease', 'n1-node', 'n1', 'held.confirmed.waiting', 'held.confirmed.renewing', 'xstate.after', 3, { validUntil: wall + 5 }),
          );
        })),
        [],
      );
    });

    test("a reap or a takeover of a cut-off node's key does not end its handler: the node must stop it itself", () => {
      const reaped = (h: Transition[]) =>
        h.push({ ...ev('lease', 'n1-node', 'n2', 'held', 'reaped', 'lease.reaped', 3, { holder: 'n1-i' }) });
      assert.deepEqual(kinds(overlap(reaped)), ['handler-overlap']);
      const takenOver = (h: Transition[]) =>
        h.push({
          ...ev('lease', 'n1-node', 'n1', 'standby', 'held.confirmed.waiting', 'xstate.done.actor', 7, { validUntil: wall + 10_000 }),
          instance: 'n1-j',
        });
      assert.deepEqual(kinds(overlap(takenOver)), ['handler-overlap']);
    });

    test("a killed process's handler ends at its death (the harness records the kill)", () => {
      const killed = (h: Transition[]) =>
        h.push({ ...ev('process', 'n1-i', 'harness', null, 'killed', 'process.killed', null, { pid: 1 }) });
      // pid 1 is every process in these histories: give n2's handler another.
      const h = overlap(killed).map((t) => (t.node === 'n2' ? { ...t, pid: 2 } : t));
      assert.deepEqual(kinds(h), []);
    });
  });

  describe('handlers: term, assignment, slots', () => {
    /** n1 holds its node lease in term 3; j1 is assigned to it (revision 10, naming `term`); its handler starts citing `cites`. */
    function started(o: { term?: number; runsIn?: number; cites?: number; slots?: number; extra?: number }) {
      const h: Transition[] = [
        ev('lease', 'n1-node', 'n1', 'acquiring', 'held.confirmed.waiting', 'xstate.done.actor', 3, { validUntil: wall + 10_000 }),
        ev('job', 'j1', 'n1', null, 'assigned', 'job.submit', 1, { owner: 'n1', assigned: true, revision: 10, term: o.term ?? 3 }),
      ];
      const facts = { term: o.runsIn ?? 3, assigned: o.cites ?? 10, slots: o.slots ?? 1, ioSlots: 0 };
      h.push(ev('job', 'j1', 'n1', 'running', 'running', 'job.handler.start', 1, facts));
      for (let i = 0; i < (o.extra ?? 0); i++) {
        h.push(ev('job', `k${i}`, 'n1', null, 'assigned', 'job.submit', 1, { owner: 'n1', assigned: true, revision: 20 + i, term: 3 }));
        h.push(ev('job', `k${i}`, 'n1', 'running', 'running', 'job.handler.start', 1, { ...facts, assigned: 20 + i }));
      }
      return h;
    }
    const kinds = (h: Transition[]) => checkHistory(h).map((v) => v.invariant);

    test('a handler started on a committed assignment, in the term it named, within the slots, passes', () => {
      assert.deepEqual(kinds(started({})), []);
      assert.deepEqual(kinds(started({ slots: 2, extra: 1 })), []);
    });
    test('a handler run in another lease term than its assignment named is reported', () => {
      assert.deepEqual(kinds(started({ runsIn: 4 })), ['handler-in-term']);
    });
    test('a handler started while its node held no lease in that term is reported', () => {
      assert.deepEqual(kinds(started({ term: 5, runsIn: 5 })), ['handler-in-term']);
    });
    test('a handler citing a revision no assignment committed is reported', () => {
      const v = checkHistory(started({ cites: 11 }));
      assert.deepEqual(v.map((x) => x.invariant), ['start-cites-assignment']);
      assert.match(v[0]!.message, /citing record revision 11/);
    });
    test('a cited assignment whose writer died before recording it counts when a later write replaced it and the record agrees', () => {
      const h = started({ cites: 12 });
      h.push(ev('job', 'j1', 'n1', 'assigned', 'running', 'job.start', 1, { owner: 'n1', revision: 13, replaced: 12, started: true }));
      const rec = record({ attempts: [{ attempt: 1, node: 'n1', assignedAt: 0, outcome: 'succeeded' }] } as Partial<JobRecord>);
      assert.deepEqual(checkHistory(h, { records: [rec] }).map((v) => v.invariant), []);
      const elsewhere = record({ attempts: [{ attempt: 1, node: 'n2', assignedAt: 0, outcome: 'succeeded' }] } as Partial<JobRecord>);
      assert.deepEqual(checkHistory(h, { records: [elsewhere] }).map((v) => v.invariant), ['start-cites-assignment']);
    });
    test('with the write log (the simulation), the cited revision must have held this attempt assigned to this node', () => {
      const held = new Map([
        [10, { id: 'j1', state: 'assigned', attempt: 1, owner: 'n1' }],
        [11, { id: 'j1', state: 'queued', attempt: 1, owner: null }],
        [12, { id: 'k9', state: 'assigned', attempt: 1, owner: 'n1' }],
        [13, { id: 'j1', state: 'assigned', attempt: 1, owner: 'n2' }],
      ]);
      const committed = (rev: number) => held.get(rev) ?? null;
      const check = (cites: number) => checkHistory(started({ cites }), { committed }).map((v) => v.invariant);
      assert.deepEqual(check(10), []);
      for (const bad of [11, 12, 13, 14]) assert.deepEqual(check(bad), ['start-cites-assignment'], `cites ${bad}`);
    });
    test('an unrecorded cited revision (replies lost) counts when the next recorded version still has that attempt on that node', () => {
      // Cited 12, unrecorded; 13 (the start, its reply lost) unrecorded too; 14 is the first version on record.
      const h = started({ cites: 12 });
      h.push(ev('job', 'j1', 'n1', 'running', 'running', 'job.progress', 1, { owner: 'n1', revision: 14, replaced: 13 }));
      const rec = record({ attempts: [{ attempt: 1, node: 'n1', assignedAt: 0, outcome: 'succeeded' }] } as Partial<JobRecord>);
      assert.deepEqual(checkHistory(h, { records: [rec] }).map((v) => v.invariant), []);
      const other = started({ cites: 12 });
      other.push(ev('job', 'j1', 'n2', 'running', 'running', 'job.progress', 2, { owner: 'n2', revision: 14, replaced: 13 }));
      assert.deepEqual(checkHistory(other, { records: [rec] }).map((v) => v.invariant), ['start-cites-assignment'], 'another attempt next');
      assert.deepEqual(kinds(started({ cites: 10 + 0 }).concat()), [], 'the recorded assignment itself');
    });
    test('more handlers than slots on one node is reported; one that yielded or went to I/O its slot does not count', () => {
      assert.deepEqual(kinds(started({ slots: 1, extra: 1 })), ['slots-bound']);
      const yielded = started({ slots: 1 });
      yielded.push(ev('job', 'j1', 'n1', 'running', 'running', 'job.handler.yield', 1));
      yielded.push(...started({ slots: 1, extra: 1 }).slice(-2));
      assert.deepEqual(kinds(yielded), []);
    });
  });

  test('a job failed as an unknown type before its pending limit is reported; after it, or for another reason, not', () => {
    const failed = (ms: number, error: string, pendingTimeoutMs: number | null = null) =>
      record({ state: 'failed', error, createdAt: 0, updatedAt: ms, pendingTimeoutMs });
    const unknown = "unknown job type 'rare': no live node handled it within 60000 ms";
    assert.deepEqual(invariants(cleanJob(), [failed(300, unknown)]), ['type-wait'], 'failed at once (the default limit is 60 s)');
    assert.deepEqual(invariants(cleanJob(), [failed(60_000, unknown)]), []);
    assert.deepEqual(invariants(cleanJob(), [failed(300, unknown, 200)]), [], 'its own shorter limit');
    assert.deepEqual(invariants(cleanJob(), [failed(300, 'this job always fails')]), []);
  });

  describe('what clients were told', () => {
    const client = (id: string, event: string, data: Record<string, unknown>) => ({
      ...ev('client', id, 'harness', null, event.split('.')[1]!, event, null, data),
    });
    test('a submit answered created with no record is reported', () => {
      const h = [...cleanJob(), client('j2', 'client.submit', { id: 'j2', state: 'queued', created: true })];
      assert.deepEqual(invariants(h), ['created-has-record']);
      assert.deepEqual(invariants([...cleanJob(), client('j1', 'client.submit', { id: 'j1', state: 'queued', created: true })]), []);
    });
    test('a wait that answered other than the committed final record is reported', () => {
      const final = record({ attempt: 2 });
      const waited = (r: JobRecord) => [...cleanJob(), client('j1', 'client.wait', { record: r })];
      assert.deepEqual(invariants(waited(final), [final]), []);
      assert.deepEqual(invariants(waited({ ...final, result: { count: 24 } }), [final]), ['wait-equals-final']);
      assert.deepEqual(invariants(waited({ ...final, attempt: 1 }), [final]), ['wait-equals-final']);
      assert.deepEqual(invariants(waited({ ...final, state: 'running' }), [final]), [], 'a wait that timed out says nothing final');
    });
  });

  test('priority order: a low-priority job assigned while a higher one waited past the bound is reported; within it, not', () => {
    const at = (t: Transition, w: number) => ({ ...t, wall: w, mono: w });
    const history = (lowAssignedAt: number, highType = 'primes', requires = false) => [
      at(
        ev('job', 'hi', 'n1', null, 'queued', 'job.submit', 0, { type: highType, priority: 9, ...(requires ? { requires: true } : {}) }),
        10_000,
      ),
      at(ev('job', 'lo', 'n1', null, 'queued', 'job.submit', 0, { type: 'primes', priority: 1 }), 10_000),
      at(ev('job', 'lo', 'n1', 'queued', 'assigned', 'job.assign', 1), lowAssignedAt),
    ];
    const priority = (h: Transition[]) => checkHistory(h).filter((v) => v.invariant === 'priority-order');
    const late = priority(history(11_500));
    assert.equal(late.length, 1);
    assert.match(late[0]!.message, /job lo \(priority 1\) was assigned while job hi \(priority 9\) had waited 1500 ms/);
    assert.deepEqual(priority(history(10_400)), [], 'within the bound: the round that placed lo may predate hi');
    assert.deepEqual(priority(history(11_500, 'sleep')), [], 'another type: maybe no node handles it');
    assert.deepEqual(priority(history(11_500, 'primes', true)), [], 'requirements: maybe no node meets them');
    // One round placed both (on two nodes): lo's write landed a millisecond before hi's.
    const round = (loRound: string, hiRound: string) => [
      ...history(11_500).slice(0, 2),
      at(ev('job', 'lo', 'n1', 'queued', 'assigned', 'job.assign', 1, { round: loRound }), 11_500),
      at(ev('job', 'hi', 'n1', 'queued', 'assigned', 'job.assign', 1, { round: hiRound }), 11_501),
    ];
    assert.deepEqual(priority(round('i1:7', 'i1:7')), [], 'the same round chose both');
    assert.equal(priority(round('i1:7', 'i1:8')).length, 1, 'a later round: lo went first');
  });

  test('priority order counts a wait from when the queued record was in the bucket, and not across writes the history lacks', () => {
    /** A job write as its writer records it: decided at `wall`, recorded when the reply came (`acked`), with revisions. */
    const w = (t: Transition, wall: number, acked: number, revision: number, replaced: number) => ({
      ...t,
      wall,
      mono: acked,
      data: { ...t.data, revision, replaced },
    });
    const boot = (node: string) => ({ ...ev('node', node, node, null, 'starting', 'xstate.init', null), wall: 0, mono: 0 });
    const submit = (id: string, priority: number, wall: number, acked: number, revision: number) =>
      w(ev('job', id, 'n3', null, 'queued', 'job.submit', 0, { type: 'primes', priority }), wall, acked, revision, 0);
    const assign = (id: string, wall: number, revision: number, replaced: number) =>
      w(ev('job', id, 'n4', 'queued', 'assigned', 'job.assign', 1), wall, wall + 2, revision, replaced);
    const orphan = (id: string, wall: number, revision: number, replaced: number) =>
      w(ev('job', id, 'n4', 'assigned', 'queued', 'job.orphan', 1), wall, wall + 1, revision, replaced);
    const priority = (h: Transition[]) => checkHistory([boot('n3'), boot('n4'), ...h]).filter((v) => v.invariant === 'priority-order');
    const lo = (rev: number) => [submit('lo', 1, 200, 210, 1), assign('lo', 1_300, rev, 1)];
    assert.equal(priority([submit('hi', 9, 250, 260, 2), ...lo(3)]).length, 1, 'in the bucket since 260: an inversion');
    // Stamped at 250, its create held by a blackhole, in the bucket at 1 280: no leader could see it before.
    assert.deepEqual(priority([submit('hi', 9, 250, 1_280, 2), ...lo(3)]), []);
    // hi was assigned at revision 3 (the history lacks it: its writer's events were lost), orphaned later.
    assert.deepEqual(priority([submit('hi', 9, 250, 260, 2), ...lo(4), orphan('hi', 1_400, 5, 3)]), [], 'hi was assigned');
    // The write the history lacks came after lo's assignment: hi was still queued then.
    const other = w(ev('job', 'x', 'n4', null, 'queued', 'job.submit', 0, { type: 'sleep', priority: 5 }), 1_310, 1_311, 4, 0);
    assert.equal(priority([submit('hi', 9, 250, 260, 2), ...lo(3), other, orphan('hi', 1_400, 6, 5)]).length, 1);
  });

  // The priority-order failures found from outside (a fresh clone's CI, and the simulation at seed 777123), kept
  // with their whole histories: in each, the higher-priority job was not queued in the bucket as far as any leader
  // could see (its create held by a cut-off link, or an assignment of it whose write the history lacks: its
  // writer was cut off and then killed), so none of them is an inversion.
  test('the saved priority-order failures are no inversions once waits count what the bucket showed', () => {
    const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'chaos-failures');
    const files = readdirSync(dir).filter((f) => f.startsWith('priority-order-'));
    assert.ok(files.length >= 3);
    for (const f of files) {
      const saved = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { history: Transition[]; records?: JobRecord[] };
      const found = checkHistory(saved.history, { records: saved.records });
      assert.deepEqual(found.map((v) => `${v.invariant}: ${v.message}`), [], f);
    }
  });
});
