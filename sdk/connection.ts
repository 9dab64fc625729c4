// How the package's client and worker are told where NATS is: `servers` (one
// URL, a comma-separated list or an array) and the credentials the `shoal`
// command's flags take. Anything left out falls back to the same environment
// variables (NATS_URL, NATS_USER, NATS_CONNECT, …), then to nats://127.0.0.1:4222.
import type { ConnectionFlags } from '../nats/connect.ts';

export type ConnectOptions = Omit<ConnectionFlags, 'nats'> & {
  /** NATS server URL(s). @default NATS_URL, else nats://127.0.0.1:4222 */
  servers?: string | string[];
  /** Prefix of every subject, bucket and stream, as the cluster was started with. @default 'shoal' */
  prefix?: string;
};

export function connectionFlags(o: ConnectOptions): ConnectionFlags {
  const { servers, prefix: _prefix, ...rest } = o;
  return { ...rest, ...(servers !== undefined ? { nats: Array.isArray(servers) ? servers.join(',') : servers } : {}) };
}
