// NATS connection options from flags and environment, tuned for fast
// failover: nats.js defaults (10 reconnect attempts, 2 min pings) would let a
// node hang on to a dead server far longer than a lease lives.
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { defaults } from './defaults.ts';
import { NatsServerVersionError } from './errors.ts';
import { allowOldServerEnv, isSupportedNatsServerVersion } from './version.ts';

/** What a user may set on the command line; each falls back to an env var. */
export type ConnectionFlags = {
  /** Comma-separated server URLs (NATS_URL). */
  nats?: string;
  user?: string; // NATS_USER
  password?: string; // NATS_PASSWORD
  creds?: string; // NATS_CREDS: path to a .creds file
  tlsCa?: string; // NATS_CA
  tlsCert?: string; // NATS_CERT
  tlsKey?: string; // NATS_KEY
  /** False: use only the given URLs, never the cluster's other servers the server advertises (behind a proxy or NAT). */
  discovery?: boolean;
};

type Env = Record<string, string | undefined>;

export function serverList(flags: ConnectionFlags, env: Env = process.env): string[] {
  const raw = flags.nats ?? env.NATS_URL ?? defaults.natsUrl;
  return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

export function connectionOptions(flags: ConnectionFlags, name: string, env: Env = process.env): NodeConnectionOptions {
  const opts: NodeConnectionOptions = {
    servers: serverList(flags, env),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: defaults.reconnectTimeWaitMs,
    reconnectJitter: 50,
    pingInterval: defaults.pingIntervalMs,
    maxPingOut: defaults.maxPingOut,
    timeout: defaults.connectTimeoutMs,
    ignoreClusterUpdates: flags.discovery === false,
    // nats.js otherwise builds an Error (with its stack) for every request up front, to blame the caller
    // if it fails: measured, 8 % of a node's CPU under load. Our errors say what failed without it.
    noAsyncTraces: true,
  };
  const user = flags.user ?? env.NATS_USER;
  const pass = flags.password ?? env.NATS_PASSWORD;
  if (user !== undefined) {
    opts.user = user;
    opts.pass = pass ?? '';
  }
  const creds = flags.creds ?? env.NATS_CREDS;
  if (creds) opts.authenticator = credsAuthenticator(readFileSync(creds));
  const ca = flags.tlsCa ?? env.NATS_CA;
  const cert = flags.tlsCert ?? env.NATS_CERT;
  const key = flags.tlsKey ?? env.NATS_KEY;
  if (ca || cert || key) opts.tls = { caFile: ca, certFile: cert, keyFile: key };
  return opts;
}

/** Connect, and refuse a server older than 2.10 (its clustered compare-and-swap is broken). */
export async function connectNats(flags: ConnectionFlags, name: string, env: Env = process.env): Promise<NatsConnection> {
  const opts = connectionOptions(flags, name, env);
  let nc: NatsConnection;
  try {
    nc = await connect(opts);
  } catch (cause) {
    const servers = (opts.servers as string[]).join(', ');
    throw new Error(
      `cannot connect to NATS at ${servers}: ${(cause as Error).message}. ` +
        `Start one with 'shoal up', or pass --nats URL (or set NATS_URL).`,
      { cause },
    );
  }
  const version = nc.info?.version ?? '0.0.0';
  if (!isSupportedNatsServerVersion(version) && env[allowOldServerEnv] !== '1') {
    await nc.close();
    throw new NatsServerVersionError(nc.getServer(), version);
  }
  return nc;
}
