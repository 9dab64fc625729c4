// Idempotent setup of Shoal's JetStream state: the KV buckets and the event
// stream. Every node runs it on start; concurrent runs converge.
import { DiscardPolicy, jetstream, JetStreamApiError, type JetStreamManager, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { type Bucket, natsBucket } from '../store/bucket.ts';
import { defaultLeaseTtlMs, defaults, leaseRequestTimeoutMs } from '../base/defaults.ts';
import { LeaseTtlMismatchError } from '../base/errors.ts';
import type { Names } from './subjects.ts';
import { jsOptions } from './connect.ts';

export type BootstrapOptions = {
  replicas?: number;
  /** Asked for explicitly (a flag); undefined adopts the existing bucket's TTL. */
  leaseTtlMs?: number;
  eventsMaxAgeMs?: number;
  eventsMaxBytes?: number;
};

export type Buckets = { leases: Bucket; jobs: Bucket; checkpoints: Bucket };
export type BootstrapResult = { leaseTtlMs: number; adoptedTtl: boolean; buckets: Buckets; jsm: JetStreamManager };

const streamNotFound = 10059;

async function streamMaxAgeMs(jsm: JetStreamManager, stream: string): Promise<number | null> {
  try {
    const info = await jsm.streams.info(stream);
    return Math.round(info.config.max_age / 1e6);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === streamNotFound) return null;
    throw err;
  }
}

/** Open a bucket, creating it (bounded, history 1) when it does not exist: concurrent first starts converge. */
async function ensureKv(kvm: Kvm, jsm: JetStreamManager, name: string, maxBytes: number, replicas: number) {
  try {
    // Bounded: a full bucket refuses new keys (submits answer 507) while existing ones still update.
    // markerTTL: retention's purge markers expire (2.11+ servers; a 2.10 server ignores it).
    return await kvm.create(name, { history: 1, replicas, max_bytes: maxBytes, markerTTL: defaults.purgeMarkerTtlMs });
  } catch (err) {
    if ((await streamMaxAgeMs(jsm, `KV_${name}`)) === null) throw err;
    return kvm.open(name);
  }
}

/** The schedules bucket, opened (or created) when a schedule is first asked about. */
export async function schedulesBucket(nc: NatsConnection, n: Names, replicas: number): Promise<Bucket> {
  const jsm = await jetstreamManager(nc, jsOptions(nc, { timeout: defaults.kvTimeoutMs }));
  const kvm = new Kvm(jetstream(nc, jsOptions(nc, { timeout: defaults.kvTimeoutMs })));
  return natsBucket(await ensureKv(kvm, jsm, n.schedulesBucket, defaults.schedulesBucketMaxBytes, replicas), n.schedulesBucket, jsm);
}

export async function bootstrap(nc: NatsConnection, n: Names, opts: BootstrapOptions = {}): Promise<BootstrapResult> {
  const replicas = opts.replicas ?? defaults.replicas;
  const jsm = await jetstreamManager(nc, jsOptions(nc, { timeout: defaults.kvTimeoutMs }));
  const kvm = new Kvm(jetstream(nc, jsOptions(nc, { timeout: defaults.kvTimeoutMs })));

  // The lease TTL lives with the bucket: one cluster-wide setting.
  const leaseStream = `KV_${n.leasesBucket}`;
  let existing = await streamMaxAgeMs(jsm, leaseStream);
  if (existing === null) {
    const ttl = opts.leaseTtlMs ?? defaultLeaseTtlMs(replicas);
    try {
      await kvm.create(n.leasesBucket, { ttl, history: 1, replicas });
    } catch (err) {
      // Another node created it first, maybe with another TTL: check below.
      existing = await streamMaxAgeMs(jsm, leaseStream);
      if (existing === null) throw err;
    }
    existing ??= ttl;
  }
  if (opts.leaseTtlMs !== undefined && opts.leaseTtlMs !== existing) {
    throw new LeaseTtlMismatchError(n.leasesBucket, existing, opts.leaseTtlMs);
  }
  // Lease requests wait at most a third of the TTL (see leaseRequestTimeoutMs).
  const leases = natsBucket(
    await new Kvm(jetstream(nc, jsOptions(nc, { timeout: leaseRequestTimeoutMs(existing) }))).open(n.leasesBucket),
    n.leasesBucket,
    jsm,
  );

  const jobs = natsBucket(await ensureKv(kvm, jsm, n.jobsBucket, defaults.jobsBucketMaxBytes, replicas), n.jobsBucket, jsm);
  const checkpoints = natsBucket(
    await ensureKv(kvm, jsm, n.checkpointsBucket, defaults.checkpointsBucketMaxBytes, replicas),
    n.checkpointsBucket,
    jsm,
  );

  const eventsConfig = {
    name: n.eventsStream,
    subjects: [n.allEvents],
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: replicas,
    max_age: nanos(opts.eventsMaxAgeMs ?? defaults.eventsMaxAgeMs),
    max_bytes: opts.eventsMaxBytes ?? defaults.eventsMaxBytes,
  };
  if ((await streamMaxAgeMs(jsm, n.eventsStream)) === null) {
    try {
      await jsm.streams.add(eventsConfig);
    } catch (err) {
      if ((await streamMaxAgeMs(jsm, n.eventsStream)) === null) throw err;
    }
  }
  return { leaseTtlMs: existing, adoptedTtl: opts.leaseTtlMs === undefined, buckets: { leases, jobs, checkpoints }, jsm };
}
