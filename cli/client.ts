// What every client subcommand shares: the connection flags and a
// connection that is closed when the command is done.
import { type Command, Option } from 'commander';
import type { NatsConnection } from '@nats-io/transport-node';
import { defaults } from '../base/defaults.ts';
import { configEnv } from './config.ts';
import { type ConnectionFlags, connectNats } from '../nats/connect.ts';
import { type Names, names } from '../nats/subjects.ts';

export type Common = ConnectionFlags & { prefix: string };

export async function withApi<T>(options: Common, fn: (nc: NatsConnection, n: Names) => Promise<T>): Promise<T> {
  const nc = await connectNats(options, 'shoal-cli');
  try {
    return await fn(nc, names(options.prefix));
  } finally {
    await nc.close();
  }
}

export const print = (s: string) => process.stdout.write(`${s}\n`);

/** A connection option that an env var may set (commander records the env as its source: see cli/config.ts). */
const fromEnv = (flags: string, help: string, env: string) => new Option(flags, help).env(env);

export function withConnection(cmd: Command): Command {
  return cmd
    .addOption(fromEnv('--nats <urls>', `NATS server URL(s), comma-separated (default ${defaults.natsUrl})`, 'NATS_URL'))
    .addOption(
      fromEnv(
        '--connect <file.json>',
        'a JSON file of connect options (servers, user + pass or token), e.g. one `shoal up --auth DIR` wrote; flags and env override it',
        'NATS_CONNECT',
      ),
    )
    .addOption(fromEnv('--user <name>', 'NATS user', 'NATS_USER'))
    .addOption(fromEnv('--password <password>', 'NATS password', 'NATS_PASSWORD'))
    .addOption(fromEnv('--token <token>', 'NATS auth token', 'NATS_TOKEN'))
    .addOption(fromEnv('--creds <file>', 'NATS credentials file (JWT + NKEY seed, decentralized auth)', 'NATS_CREDS'))
    .addOption(fromEnv('--nkey <file>', "a file holding an NKEY seed (SU...) to sign the server's nonce", 'NATS_NKEY'))
    .addOption(fromEnv('--tls-ca <file>', 'CA certificate for TLS', 'NATS_CA'))
    .addOption(fromEnv('--tls-cert <file>', 'client certificate for TLS', 'NATS_CERT'))
    .addOption(fromEnv('--tls-key <file>', 'client key for TLS', 'NATS_KEY'))
    .addOption(
      fromEnv(
        '--js-domain <domain>',
        "the JetStream domain holding the cluster's buckets, for a node or client on a leaf-node server without JetStream",
        'NATS_JS_DOMAIN',
      ),
    )
    .option(
      '--no-discovery',
      'connect only to the --nats URLs, never to other cluster servers the server advertises (behind a proxy or NAT)',
    )
    .option('--prefix <prefix>', 'prefix of every subject, bucket and stream', defaults.prefix)
    .addOption(
      fromEnv(
        '--config <file.json>',
        'settings from a JSON file, keyed by long flag names ({"nats": "nats://host:4222", "slots": 8, "label": {"zone": "edge"}}); ' +
          'a flag beats an env var beats the file beats the default',
        configEnv,
      ),
    );
}
