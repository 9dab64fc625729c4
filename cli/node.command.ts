// `shoal node`: its flags (capacity, placement, preemption, policy) and the
// handoff to the node process. The flags (with env vars and the config file,
// layered by cli/config.ts) give the options that were set; the defaults are
// filled in once, by resolveNodeConfig (node/config.ts), and only shown here.
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { placementStrategies, type PlacementStrategy } from '../policies/placement.ts';
import { defaultPreemption } from '../policies/preemption.ts';
import { defaults } from '../base/defaults.ts';
import type { NodeOptions } from '../node/config.ts';
import { label, nonNegativeInt, portNumber, positiveInt, positiveNumber, tokenList } from './args.ts';
import { type Common, withConnection } from './client.ts';

const leaseTtlHelp = 'lease TTL in ms. It is the TTL of the leases bucket, so one value for the whole cluster: ' +
  "when the bucket exists with another TTL the node refuses to start with an error; omit the flag to adopt the bucket's " +
  `(default for a new bucket: ${defaults.leaseTtlMs}, or ${defaults.replicatedLeaseTtlMs} with --replicas 3, to outlast a JetStream leader election)`;

/** What commander gives: only what a flag, an env var or the config file set (besides the negated booleans). */
type NodeFlags = Common & {
  id?: string;
  slots?: number;
  ioSlots?: number;
  memMb?: number;
  gpu?: number;
  leaseTtl?: number;
  replicas?: number;
  label?: Record<string, string>;
  fastPath: boolean;
  placement?: PlacementStrategy;
  preempt: boolean;
  preemptGrace?: number;
  preemptMax?: number;
  preemptCooldown?: number;
  policy?: string;
  speed?: number;
  jobs?: string;
  metricsPort?: number;
  metricsHost?: string;
  count?: number;
  allowExec?: boolean;
  inlineHandlers?: boolean;
  retention?: number;
  replyPrefix?: string[];
  /** Log lines as JSON objects (set for the process by the command's hook, base/output.ts). */
  json?: boolean;
};

/** The flags as node options (undefined: not set, so resolveNodeConfig gives the default). */
export function nodeOptionsOf(options: NodeFlags): NodeOptions {
  const {
    leaseTtl,
    retention,
    label: labels,
    replyPrefix,
    preempt,
    preemptGrace,
    preemptMax,
    preemptCooldown,
    count: _count,
    json: _json,
    ...rest
  } = options;
  return {
    ...rest,
    leaseTtlMs: leaseTtl,
    retentionMs: retention,
    labels,
    replyPrefixes: replyPrefix,
    preemption: { enabled: preempt, graceMs: preemptGrace, maxPreemptions: preemptMax, cooldownMs: preemptCooldown },
  };
}

export function nodeCommand(cmd: Command): void {
  cmd
    .description('run one node actor process (also a coordinator candidate) against a NATS server; SIGTERM/SIGINT drain it and exit 0')
    .option('--id <id>', 'node id (letters, digits, - or _); must be unique among live nodes (default: node-<random>)')
    .option(
      '--count <k>',
      'host K node actors in this one process, with ids <id>-1 … <id>-K, each with its own lease, slots and coordinator candidate ' +
        '(a fleet on one host, for scale tests); killing the process takes all K; --metrics-port P serves node i on P + i - 1 (default: 1)',
      positiveInt('--count'),
    )
    .option('--slots <n>', `compute slots: how many jobs this node computes at once (default: ${defaults.slots})`, positiveInt('--slots'))
    .option(
      '--io-slots <n>',
      "how many more jobs may wait on I/O (ctx.phase('io'), e.g. the sleep built-in) without holding a compute slot; " +
        `0: a job in I/O keeps its slot (default: ${defaults.ioSlots})`,
      nonNegativeInt('--io-slots'),
    )
    .option(
      '--mem-mb <n>',
      "memory (MB) offered to jobs that require it (submit --mem-mb) (default: this host's memory)",
      positiveInt('--mem-mb'),
    )
    .option('--gpu <n>', 'GPUs offered to jobs that require them (submit --gpu) (default: 0)', nonNegativeInt('--gpu'))
    .option('--label <key=value>', 'a label jobs can require (submit --label); repeatable', label)
    .option('--lease-ttl <ms>', leaseTtlHelp, positiveInt('--lease-ttl'))
    .option(
      '--replicas <n>',
      `JetStream replicas for buckets and streams this node creates (3 on a 3-server cluster) (default: ${defaults.replicas})`,
      positiveInt('--replicas'),
    )
    .option(
      '--jobs <module>',
      'a module whose exported async functions are job handlers by name, added to the built-ins (noop, sleep, primes, fail; exec with --allow-exec)',
    )
    .option(
      '--allow-exec',
      'register the exec built-in: any caller that may submit jobs can then run commands on this node as its user ' +
        "(with a clean environment: PATH and the job's own env only). Off by default; see docs/operations.md, Security",
    )
    .option(
      '--retention <ms>',
      "how long a finished job's record and checkpoint stay before the leader deletes them (a job's own retentionMs wins; " +
        `the leader's setting applies) (default: ${defaults.retentionMs} = 7 days)`,
      positiveInt('--retention'),
    )
    .option(
      '--inline-handlers',
      "run every handler on the node's own thread. By default a --jobs module's handlers (and primes) run in worker " +
        'threads, so one that never yields is timed out while the node keeps its lease; inline saves ~60 µs per job',
    )
    .option(
      '--reply-prefix <prefix>',
      'an inbox prefix besides _INBOX… that API replies may go to (a client connected with its own inboxPrefix); repeatable. ' +
        'Requests whose reply subject is anything else are dropped and counted (shoal_replies_refused_total)',
      tokenList('--reply-prefix'),
    )
    .option('--no-fast-path', 'never ping lease holders: take over only when a lease expires (a benchmark baseline)')
    .addOption(
      new Option(
        '--placement <strategy>',
        'how this node places jobs while it leads: dispatch (the leader places every job itself, scoring a few sampled nodes by the policy; nodes get only their own assignments), auction (every node bids by the policy), centralized (the leader gives each job to the least-loaded ready node) or pull (the leader puts queued jobs on a JetStream work queue, nodes with free slots take them); the last three are baselines to compare with; give every node the same (default: dispatch)',
      ).choices(placementStrategies),
    )
    .option(
      '--no-preempt',
      'while this node leads, never preempt: a queued job waits for a free slot whatever its priority (auction and centralized placement preempt by default)',
    )
    .option(
      '--preempt-grace <ms>',
      `how long a preempted job may still checkpoint before its attempt ends anyway (default: ${defaultPreemption.graceMs})`,
      positiveInt('--preempt-grace'),
    )
    .option(
      '--preempt-max <n>',
      `a job preempted this many times is not preempted again within --preempt-cooldown of the last time (default: ${defaultPreemption.maxPreemptions})`,
      positiveInt('--preempt-max'),
    )
    .option('--preempt-cooldown <ms>', `see --preempt-max (default: ${defaultPreemption.cooldownMs})`, positiveInt('--preempt-cooldown'))
    .option(
      '--policy <policy>',
      'how this node scores its bids: onnx (the shipped learned model), heuristic, or a path to a .onnx model with its .json spec beside it; a model that cannot be used falls back to the heuristic with a warning (status shows it) (default: onnx)',
    )
    .option(
      '--speed <factor>',
      'speed factor: handlers sleep 1/factor of the time asked (a knob for heterogeneous benchmarks); also a bid feature (default: 1)',
      positiveNumber('--speed'),
    )
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<metrics-host>:<port>/metrics', portNumber('--metrics-port'))
    .option(
      '--metrics-host <host>',
      `address the metrics server listens on (0.0.0.0 for a remote Prometheus) (default: ${defaults.metricsHost})`,
    )
    .option('--json', 'log lines as JSON objects ({at, source, msg}) on stderr, for a log collector')
    .action(async (options: NodeFlags) => {
      const { runNodes } = await import('../node/node.process.ts');
      // Exit once stopped: a retry or reconnect timer left behind (a nats-server that is gone) must not keep the process up.
      process.exit(await runNodes(nodeOptionsOf(options), options.count ?? 1));
    });
}

/**
 * `shoal up`'s flags for its nodes (every `shoal node` flag but the ones `up` sets itself): checked here as
 * `shoal node` checks them, so a typo fails `up` at once; file paths made absolute (a node runs from elsewhere).
 */
export function nodeFlagsForUp(args: string[]): string[] {
  for (const own of ['--id', '--nats', '--count']) {
    if (args.some((a) => a === own || a.startsWith(`${own}=`))) {
      throw new InvalidArgumentError(`shoal up sets ${own} for its nodes itself (it names them n1, n2, … on its own servers)`);
    }
  }
  const probe = new Command('node').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  nodeCommand(withConnection(probe));
  const { operands, unknown } = probe.parseOptions(args);
  if (unknown.length > 0) {
    throw new InvalidArgumentError(`'${unknown[0]}' is not a node flag, for shoal up to pass on ('shoal node --help' lists them)`);
  }
  if (operands.length > 0) throw new InvalidArgumentError(`shoal up: unexpected '${operands[0]}' (node flags start with --)`);
  const paths = new Set(['--jobs', '--policy', '--config', '--creds', '--nkey', '--tls-ca', '--tls-cert', '--tls-key', '--connect']);
  const absolute = (v: string) => (['onnx', 'heuristic'].includes(v) ? v : resolve(v));
  return args.map((a, i) => {
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0 && paths.has(a.slice(0, eq))) return `${a.slice(0, eq)}=${absolute(a.slice(eq + 1))}`;
    return i > 0 && paths.has(args[i - 1]!) ? absolute(a) : a;
  });
}
