// `shoal doctor`: checks what a cluster needs, in order, and says in words what
// is wrong and how to fix it: the connection, the server's version, JetStream,
// the buckets' settings, the nodes and their clocks, and what the credentials
// in use may do. Exit 1 when a check fails (warnings do not fail it).
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { callApi } from '../nats/client.ts';
import { connectNats, jsOptions } from '../nats/connect.ts';
import { defaults } from '../base/defaults.ts';
import { credentialsRole, isNoResponders, isPermissionDenied } from '../nats/probe.ts';
import type { ClusterView } from '../api/contract.ts';
import { type Names, names } from '../nats/subjects.ts';
import type { Common } from './client.ts';

export type Check = { level: 'ok' | 'warn' | 'fail'; what: string; fix?: string };

const ok = (what: string): Check => ({ level: 'ok', what });
const warn = (what: string, fix?: string): Check => ({ level: 'warn', what, fix });
const fail = (what: string, fix: string): Check => ({ level: 'fail', what, fix });
const message = (err: unknown) => (err as Error)?.message ?? String(err);

/** Clocks further apart than this skew job timestamps (backoff, pending timeouts, `events --since`); leases use monotonic time. */
export const skewWarnMs = 500;

async function checkJetStream(nc: NatsConnection, n: Names, replicasExpected: number): Promise<Check[]> {
  const out: Check[] = [];
  try {
    const jsm = await jetstreamManager(nc, jsOptions(nc, { timeout: 3_000 }));
    const info = await jsm.getAccountInfo();
    out.push(ok(`JetStream is enabled (${info.streams} streams in this account)`));
  } catch (err) {
    if (isPermissionDenied(err)) return [warn('these credentials may not use the JetStream API (a client role): bucket checks skipped')];
    return [
      fail(
        `JetStream does not answer: ${message(err)}`,
        'enable JetStream on the server (`jetstream {}` in its config, or nats-server -js); on a leaf-node server without ' +
          "JetStream, pass --js-domain with the core's domain",
      ),
    ];
  }
  const kvm = new Kvm(jetstream(nc, jsOptions(nc, { timeout: 3_000 })));
  const buckets: Array<[string, (s: { ttl: number; history: number; replicas: number }) => Check]> = [
    [
      n.leasesBucket,
      (s) =>
        s.ttl > 0
          ? ok(`bucket ${n.leasesBucket}: lease TTL ${s.ttl} ms, history ${s.history}, replicas ${s.replicas}`)
          : fail(`bucket ${n.leasesBucket} has no TTL: leases would never expire`, `delete the bucket and let a node recreate it`),
    ],
    [n.jobsBucket, (s) => ok(`bucket ${n.jobsBucket}: history ${s.history}, replicas ${s.replicas}`)],
    [n.checkpointsBucket, (s) => ok(`bucket ${n.checkpointsBucket}: history ${s.history}, replicas ${s.replicas}`)],
  ];
  for (const [name, judge] of buckets) {
    try {
      const st = await (await kvm.open(name)).status();
      const s = { ttl: st.ttl, history: st.history, replicas: st.replicas };
      out.push(judge(s));
      if (s.replicas < replicasExpected) {
        out.push(
          warn(
            `bucket ${name} has ${s.replicas} replica(s) on a cluster of ${replicasExpected} servers: losing one server loses it`,
            'recreate the buckets with shoal node --replicas 3 (stop the nodes, delete the KV_ streams, start the nodes)',
          ),
        );
      }
    } catch (err) {
      out.push(
        isPermissionDenied(err)
          ? warn(`bucket ${name}: these credentials may not read it`)
          : warn(`bucket ${name} does not exist yet (${message(err)})`, 'start a node (shoal node): it creates the buckets'),
      );
    }
  }
  return out;
}

async function checkNodes(nc: NatsConnection, n: Names): Promise<Check[]> {
  let s: ClusterView;
  try {
    s = await callApi(nc, n, 'status', {}, 3_000);
  } catch (err) {
    if (isPermissionDenied(err)) {
      return [fail('these credentials may not call shoal.api.status', 'use credentials of the client, node or admin role')];
    }
    if (isNoResponders(err) || /no responders|503|timeout/i.test(message(err))) {
      return [fail(`no node answers the API (${message(err)})`, 'start a node: shoal node --nats URL (or shoal up for a local cluster)')];
    }
    return [fail(`status failed: ${message(err)}`, "see the nodes' logs")];
  }
  const out: Check[] = [];
  out.push(
    s.leader ? ok(`${s.nodes.length} live node(s); ${s.leader.nodeId} leads (epoch ${s.leader.epoch})`) : warn(
      `${s.nodes.length} live node(s) and no leader right now`,
      "an election takes up to one lease TTL; if it lasts, read the nodes' logs",
    ),
  );
  const skews = s.nodes.filter((x) => x.clockSkewMs !== null && x.clockSkewMs !== undefined);
  if (skews.length > 0) {
    const worst = skews.reduce((a, b) => (Math.abs(b.clockSkewMs!) > Math.abs(a.clockSkewMs!) ? b : a));
    const spread = Math.max(...skews.map((x) => x.clockSkewMs!)) - Math.min(...skews.map((x) => x.clockSkewMs!));
    const text = `clocks: nodes differ from the NATS server by at most ${Math.abs(worst.clockSkewMs!)} ms (${worst.id}), ` +
      `from each other by ${spread} ms`;
    out.push(
      Math.abs(worst.clockSkewMs!) > skewWarnMs || spread > skewWarnMs
        ? warn(text, `synchronize the hosts' clocks (chrony or systemd-timesyncd); leases are safe (monotonic), job timestamps are not`)
        : ok(text),
    );
  }
  return out;
}

/** What these credentials may do: the API, the JetStream API, the admin endpoints (nothing is changed). */
async function checkPermissions(nc: NatsConnection, n: Names): Promise<Check> {
  const { role, api, js, admin } = await credentialsRole(nc, n);
  const word = (x: boolean | null) => (x === null ? 'unknown (no answer)' : x ? 'yes' : 'no');
  const text = `credentials: ${role} — public API ${word(api)}, JetStream API ${word(js)}, admin endpoints ${word(admin)}`;
  if (api === false) {
    return fail(text, 'these credentials cannot call the API at all: use the client role (shoal up --auth writes client.json)');
  }
  return api ? ok(text) : warn(text, 'no node answered: start one to check the API permission');
}

export async function runDoctor(options: Common): Promise<{ checks: Check[]; code: number }> {
  const checks: Check[] = [];
  const n = names(options.prefix);
  let nc: NatsConnection;
  try {
    nc = await connectNats(options, 'shoal-doctor');
  } catch (err) {
    const m = message(err);
    const fix = /authorization|authentication/i.test(m)
      ? 'the server wants credentials: pass --connect FILE, --user/--password, --token, --nkey or --creds'
      : /version|2\.10/i.test(m)
      ? 'install nats-server 2.10 or newer (bash scripts/setup.sh fetches one)'
      : /certificate|tls/i.test(m)
      ? "pass --tls-ca with the CA that signed the server's certificate"
      : 'start a server (shoal up), or pass --nats URL / set NATS_URL';
    return { checks: [fail(m, fix)], code: 1 };
  }
  try {
    const info = nc.info!;
    const cluster = info.cluster ? `, cluster ${info.cluster}` : '';
    checks.push(ok(`connected to ${nc.getServer()}: nats-server ${info.version}${cluster}`));
    if (!info.cluster) {
      checks.push(ok('a lone server (no cluster): fine for one site; --cluster 3 or your own cluster for failover of the server itself'));
    }
    // On a cluster, buckets want 3 replicas to survive a server.
    checks.push(...await checkJetStream(nc, n, info.cluster ? 3 : defaults.replicas));
    checks.push(...await checkNodes(nc, n));
    checks.push(await checkPermissions(nc, n));
  } finally {
    await nc.close();
  }
  return { checks, code: checks.some((c) => c.level === 'fail') ? 1 : 0 };
}

export function formatChecks(checks: Check[]): string {
  const mark = { ok: '✓', warn: '!', fail: '✗' };
  return checks.map((c) => `${mark[c.level]} ${c.what}${c.fix ? `\n    fix: ${c.fix}` : ''}`).join('\n');
}
