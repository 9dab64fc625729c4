// Stage 0 of the hot path: what each kind of message costs on this machine,
// in CPU of every process involved (the nats-server and the client), on each
// nats-server version at hand. One operation at a time and pipelined. The
// figures decide the per-job message budget (docs/benchmarks.md, Stage 0).
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { jobRecordSchema } from '../api/contract.ts';
import { applyJobEvent, newJobRecord } from '../machines/job.machine.ts';
import { decode, encode } from '../store/codec.ts';
import { existsSync } from 'node:fs';
import { cachedNewestNatsServer, findNatsServer, type NatsServer, startServer } from '../harness/launcher.ts';
import { Encoder } from 'cbor-x';

/** CPU ms of a process (user + system) from /proc, 10 ms resolution. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export type Stage0Row = { what: string; ops: number; wallMs: number; serverUsPerOp: number; clientUsPerOp: number; opsPerSecond: number };

/** Run `ops` operations, at most `window` in flight; CPU of the server and of this process per operation. */
async function measure(
  what: string,
  server: NatsServer | null,
  ops: number,
  window: number,
  op: (i: number) => Promise<unknown> | unknown,
): Promise<Stage0Row> {
  const s0 = server?.pid ? processCpuMs(server.pid) : 0;
  const c0 = selfCpuMs();
  const t0 = performance.now();
  let next = 0;
  const lanes = Array.from({ length: Math.min(window, ops) }, async () => {
    while (next < ops) await op(next++);
  });
  await Promise.all(lanes);
  const wallMs = performance.now() - t0;
  const serverMs = server?.pid ? processCpuMs(server.pid) - s0 : 0;
  const clientMs = selfCpuMs() - c0;
  return {
    what,
    ops,
    wallMs: Math.round(wallMs),
    serverUsPerOp: Math.round((serverMs * 1000) / ops * 10) / 10,
    clientUsPerOp: Math.round((clientMs * 1000) / ops * 10) / 10,
    opsPerSecond: Math.round(ops / (wallMs / 1000)),
  };
}

const record = newJobRecord(
  { id: 'stage0-job', type: 'noop', input: { a: 1 }, priority: 5, maxAttempts: 3, timeoutMs: 60_000 },
  Date.now(),
);
const assigned = applyJobEvent(record, { type: 'job.assign', node: 'n1', at: Date.now() })!;
const payload = encode(assigned);

/** The messaging figures against one server binary. */
async function onServer(bin: string, quick: boolean, progress: (what: string) => void): Promise<{ version: string; rows: Stage0Row[] }> {
  const server = await startServer({ bin });
  const nc = await connect({ servers: server.url });
  const other = await connect({ servers: server.url });
  const rows: Stage0Row[] = [];
  const n = quick ? 2_000 : 20_000;
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: 'S0', subjects: ['s0.>'] });
    progress('publish with ack');
    rows.push(await measure('JetStream publish + ack, one at a time', server, n / 4, 1, () => js.publish('s0.a', payload)));
    rows.push(await measure('JetStream publish + ack, 256 in flight', server, n, 256, () => js.publish('s0.a', payload)));

    const kv = await new Kvm(nc).create('s0kv', { history: 1 });
    progress('KV create and update (CAS)');
    rows.push(await measure('KV create (CAS on a new key), 256 in flight', server, n, 256, (i) => kv.create(`job.c${i}`, payload)));
    rows.push(
      await measure('KV update (CAS on its revision), 256 in flight', server, n, 256, async (i) => {
        const key = `job.c${i % n}`;
        await kv.update(key, payload, (await kv.get(key))!.revision);
      }),
    );

    progress('KV watch delivery');
    const watched = await new Kvm(other).open('s0kv');
    const iter = await watched.watch({ key: 'job.w.>' });
    let seen = 0;
    let target = 0;
    let reached = () => {};
    void (async () => {
      for await (const e of iter) {
        if (e.key.startsWith('job.w.') && ++seen >= target) reached();
      }
    })();
    const writes = async (count: number) => {
      target = seen + count;
      const done = new Promise<void>((r) => (reached = r));
      await measure('', null, count, 256, (i) => kv.put(`job.w.${i}`, payload));
      await done;
    };
    // Cost of a delivery: writes with the watcher on, less the same writes without it.
    const base = await measure('KV put, no watcher', server, n, 256, (i) => kv.put(`job.x.${i}`, payload));
    const s0 = processCpuMs(server.pid!);
    const c0 = selfCpuMs();
    const t0 = performance.now();
    await writes(n);
    const withWatch = { server: processCpuMs(server.pid!) - s0, client: selfCpuMs() - c0, wall: performance.now() - t0 };
    iter.stop();
    rows.push({
      what: 'KV watch delivery (one watcher; beyond the write itself)',
      ops: n,
      wallMs: Math.round(withWatch.wall),
      serverUsPerOp: Math.round(((withWatch.server * 1000) / n - base.serverUsPerOp) * 10) / 10,
      clientUsPerOp: Math.round(((withWatch.client * 1000) / n - base.clientUsPerOp) * 10) / 10,
      opsPerSecond: Math.round(n / (withWatch.wall / 1000)),
    });

    progress('core request/reply');
    other.subscribe('s0.echo', { callback: (_e, m) => void m.respond(m.data) });
    await other.flush();
    rows.push(await measure('core request/reply, one at a time', server, n / 4, 1, () => nc.request('s0.echo', payload)));
    rows.push(await measure('core request/reply, 256 in flight', server, n, 256, () => nc.request('s0.echo', payload)));
    rows.push(await measure('core publish (no reply), fire and forget', server, n * 5, 1, () => nc.publish('s0.sink', payload)));

    if (await supportsAtomicBatch(jsm)) {
      progress('atomic batch of 64');
      await jsm.streams.add({ name: 'S0B', subjects: ['s0b.>'], allow_atomic: true } as never);
      const batches = Math.round(n / 64);
      const row = await measure('atomic batch publish of 64, one batch at a time', server, batches, 1, () => atomicBatch(js, 64));
      rows.push({
        ...row,
        what: 'atomic batch publish (64 messages, 1 ack), per message',
        ops: batches * 64,
        serverUsPerOp: Math.round((row.serverUsPerOp / 64) * 10) / 10,
        clientUsPerOp: Math.round((row.clientUsPerOp / 64) * 10) / 10,
        opsPerSecond: row.opsPerSecond * 64,
      });
    }
    return { version: server.bin.version, rows };
  } finally {
    await nc.close();
    await other.close();
    await server[Symbol.asyncDispose]();
  }
}

async function supportsAtomicBatch(jsm: Awaited<ReturnType<typeof jetstreamManager>>): Promise<boolean> {
  try {
    await jsm.streams.add({ name: 'S0PROBE', subjects: ['s0probe.>'], allow_atomic: true } as never);
    const si = await jsm.streams.info('S0PROBE');
    await jsm.streams.delete('S0PROBE');
    return (si.config as { allow_atomic?: boolean }).allow_atomic === true;
  } catch {
    return false;
  }
}

async function atomicBatch(js: JetStreamClient, size: number): Promise<void> {
  const b = await js.startBatch('s0b.a', payload);
  for (let i = 1; i < size - 1; i++) b.add('s0b.a', payload);
  await b.commit('s0b.a', payload);
}

/** The in-process figures: decoding a record with and without the schema, and one job-machine step. */
export async function inProcess(quick: boolean): Promise<Stage0Row[]> {
  const n = quick ? 20_000 : 200_000;
  const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
  return [
    await measure('decode a job record: CBOR only', null, n, 1, () => cbor.decode(payload)),
    await measure('decode a job record: CBOR + zod validation', null, n, 1, () => decode(jobRecordSchema, payload, 'record')),
    await measure('encode a job record (CBOR)', null, n, 1, () => encode(assigned)),
    await measure(
      'job machine step (applyJobEvent: start)',
      null,
      n,
      1,
      () => applyJobEvent(assigned, { type: 'job.start', node: 'n1', attempt: 1, resumedFrom: 0, at: Date.now() }),
    ),
  ];
}

export async function stage0(
  bins: string[],
  options: { quick: boolean; progress: (what: string) => void },
): Promise<{ servers: Array<{ version: string; rows: Stage0Row[] }>; local: Stage0Row[] }> {
  const servers = [];
  for (const bin of bins) servers.push(await onServer(bin, options.quick, options.progress));
  options.progress('in-process figures');
  return { servers, local: await inProcess(options.quick) };
}

/** `shoal bench stage0`: the figures on every nats-server at hand (the one setup installs, and the newest). */
export async function stage0Scenario(options: { quick: boolean; progress: (done: number, total: number, what: string) => void }) {
  const began = performance.now();
  const bins = [...new Set([(await findNatsServer()).path, cachedNewestNatsServer].filter((b) => existsSync(b)))];
  let step = 0;
  const { servers, local } = await stage0(bins, {
    quick: options.quick,
    progress: (what) => options.progress(step++, 6 * bins.length + 1, what),
  });
  const columns = ['nats-server µs/op', 'client µs/op', 'ops/s'];
  const table = (title: string, rows: Stage0Row[]) => ({
    title,
    columns,
    rows: rows.map((r) => ({ figure: r.what, unit: '', values: [r.serverUsPerOp, r.clientUsPerOp, r.opsPerSecond], higherIsBetter: null })),
  });
  return {
    scenario: 'stage0',
    title: 'Stage 0: what a message costs',
    setup:
      `CPU per operation of the nats-server process (/proc, 10 ms ticks) and of the client process, one operation at a time and pipelined; in-process figures without a server`,
    figures: [],
    samples: {},
    charts: [],
    tables: [...servers.map((s) => table(`nats-server ${s.version}`, s.rows)), table('in process', local)],
    ms: Math.round(performance.now() - began),
  };
}
