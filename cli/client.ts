// What every client subcommand shares: the connection flags and a
// connection that is closed when the command is done.
import type { NatsConnection } from '@nats-io/transport-node';
import { type ConnectionFlags, connectNats } from '../streams/connect.ts';
import { type Names, names } from '../streams/subjects.ts';

export type Common = ConnectionFlags & { prefix: string };

export async function withApi<T>(o: Common, fn: (nc: NatsConnection, n: Names) => Promise<T>): Promise<T> {
  const nc = await connectNats(o, 'shoal-cli');
  try {
    return await fn(nc, names(o.prefix));
  } finally {
    await nc.close();
  }
}

export const print = (s: string) => process.stdout.write(`${s}\n`);
