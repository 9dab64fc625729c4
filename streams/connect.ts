// NATS connection options from flags and environment, tuned for fast
// failover: nats.js defaults (10 reconnect attempts, 2 min pings) would let a
// node hang on to a dead server far longer than a lease lives.
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { defaults } from './defaults.ts';

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
    ignoreClusterUpdates: false,
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

export async function connectNats(flags: ConnectionFlags, name: string): Promise<NatsConnection> {
  const opts = connectionOptions(flags, name);
  try {
    return await connect(opts);
  } catch (cause) {
    const servers = (opts.servers as string[]).join(', ');
    throw new Error(
      `cannot connect to NATS at ${servers}: ${(cause as Error).message}. ` +
        `Start one with 'shoal up', or pass --nats URL (or set NATS_URL).`,
      { cause },
    );
  }
}
