// NATS connection options from flags and environment, tuned for fast
// failover: nats.js defaults (10 reconnect attempts, 2 min pings) would let a
// node hang on to a dead server far longer than a lease lives.
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection, nkeyAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import { z } from 'zod';
import { defaults } from '../base/defaults.ts';
import { NatsConnectError, NatsServerVersionError } from '../base/errors.ts';
import { allowOldServerEnv, isSupportedNatsServerVersion } from './version.ts';

/** What a user may set on the command line; each falls back to an env var, then to the `--connect` file. */
export type ConnectionFlags = {
  /** Comma-separated server URLs (NATS_URL). */
  nats?: string;
  /** A JSON file of nats.js connect() options (`servers`, `user` + `pass` or `token`), as `shoal up --auth` writes (NATS_CONNECT). */
  connect?: string;
  user?: string; // NATS_USER
  password?: string; // NATS_PASSWORD
  token?: string; // NATS_TOKEN
  creds?: string; // NATS_CREDS: path to a .creds file
  nkey?: string; // NATS_NKEY: path to a file holding an NKEY seed (SU...)
  tlsCa?: string; // NATS_CA
  tlsCert?: string; // NATS_CERT
  tlsKey?: string; // NATS_KEY
  /** The JetStream domain holding the cluster's buckets, from a leaf-node server without JetStream (NATS_JS_DOMAIN). */
  jsDomain?: string;
  /** False: use only the given URLs, never the cluster's other servers the server advertises (behind a proxy or NAT). */
  discovery?: boolean;
};

type Env = Record<string, string | undefined>;

/** The part of a `--connect` file we read: what any nats.js version's connect() takes as is. */
const connectFile = z.object({
  servers: z.union([z.string(), z.array(z.string())]).optional(),
  user: z.string().optional(),
  pass: z.string().optional(),
  token: z.string().optional(),
  inboxPrefix: z.string().regex(/^[A-Za-z0-9_-]+$/).optional(),
}).passthrough();

function readConnectFile(path: string | undefined): z.infer<typeof connectFile> {
  if (!path) return {};
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new Error(`cannot read the connect file ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    return connectFile.parse(JSON.parse(raw));
  } catch (cause) {
    throw new Error(`${path} is not a connect file (JSON with servers, user and pass or token): ${(cause as Error).message}`, { cause });
  }
}

export function serverList(flags: ConnectionFlags, env: Env = process.env): string[] {
  const file = readConnectFile(flags.connect ?? env.NATS_CONNECT);
  const raw = flags.nats ?? env.NATS_URL ?? (Array.isArray(file.servers) ? file.servers.join(',') : file.servers) ?? defaults.natsUrl;
  return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/** `inboxPrefix`: where replies come (node processes use their own, see nats/roles.ts). */
export function connectionOptions(
  flags: ConnectionFlags,
  name: string,
  env: Env = process.env,
  inboxPrefix?: string,
): NodeConnectionOptions {
  const file = readConnectFile(flags.connect ?? env.NATS_CONNECT);
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
  const prefix = inboxPrefix ?? file.inboxPrefix;
  if (prefix) opts.inboxPrefix = prefix;
  // Credentials come as one unit from the highest layer that sets any (flags, then env, then the file):
  // never one layer's user with another's password.
  const layers = [
    { user: flags.user, pass: flags.password, token: flags.token, creds: flags.creds, nkey: flags.nkey },
    { user: env.NATS_USER, pass: env.NATS_PASSWORD, token: env.NATS_TOKEN, creds: env.NATS_CREDS, nkey: env.NATS_NKEY },
    { user: file.user, pass: file.pass, token: file.token, creds: undefined, nkey: undefined },
  ];
  const auth = layers.find((l) => Object.values(l).some((v) => v !== undefined && v !== '')) ?? layers[2]!;
  if (auth.user !== undefined) {
    opts.user = auth.user;
    opts.pass = auth.pass ?? '';
  }
  if (auth.token !== undefined) opts.token = auth.token;
  if (auth.creds) opts.authenticator = credsAuthenticator(readFileSync(auth.creds));
  else if (auth.nkey) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFileSync(auth.nkey, 'utf8').trim()));
  const ca = flags.tlsCa ?? env.NATS_CA;
  const cert = flags.tlsCert ?? env.NATS_CERT;
  const key = flags.tlsKey ?? env.NATS_KEY;
  if (ca || cert || key) opts.tls = { caFile: ca, certFile: cert, keyFile: key };
  return opts;
}

/** Connect, and refuse a server older than 2.10 (its clustered compare-and-swap is broken). */
export async function connectNats(
  flags: ConnectionFlags,
  name: string,
  options: { env?: Env; inboxPrefix?: string } = {},
): Promise<NatsConnection> {
  const env = options.env ?? process.env;
  const opts = connectionOptions(flags, name, env, options.inboxPrefix);
  let nc: NatsConnection;
  try {
    nc = await connect(opts);
  } catch (cause) {
    const servers = (opts.servers as string[]).join(', ');
    throw new NatsConnectError(
      `cannot connect to NATS at ${servers}: ${(cause as Error).message}. ` +
        `Start one with 'shoal up', or pass --nats URL (or set NATS_URL).`,
      { cause },
    );
  }
  const domain = flags.jsDomain ?? env.NATS_JS_DOMAIN;
  if (domain) jsDomains.set(nc, domain);
  const version = nc.info?.version ?? '0.0.0';
  if (!isSupportedNatsServerVersion(version) && env[allowOldServerEnv] !== '1') {
    await nc.close();
    throw new NatsServerVersionError(nc.getServer(), version);
  }
  return nc;
}

const jsDomains = new WeakMap<NatsConnection, string>();

/** JetStream client options for a connection: its JetStream domain (`--js-domain`), and `o`. */
export function jsOptions<T extends object>(nc: NatsConnection, options: T = {} as T): T & { domain?: string } {
  const domain = jsDomains.get(nc);
  return domain ? { ...options, domain } : options;
}
