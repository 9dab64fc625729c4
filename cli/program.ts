// `shoal`: the one command-line entry. Everything that talks to a running
// cluster goes through the public NATS API, like any other client would.
import { chaosLeaseTtlMs } from '../chaos/defaults.ts';
import { demoLeaseTtlMs } from '../harness/defaults.ts';
import { inspectorDefaults } from '../inspector/defaults.ts';
import { Command, InvalidArgumentError, Option } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { defaults } from '../base/defaults.ts';
import { withConnection } from './client.ts';
import { nonNegativeInt, portNumber, positiveInt } from './args.ts';
import { nodeCommand, nodeFlagsForUp } from './node.command.ts';
import { applyConfig } from './config.ts';
import { commanderOutput, exitCodesHelp } from './exit.codes.ts';
import { clientCommands, scheduleCommands } from './client.commands.ts';
import { result, say, setJson } from '../base/output.ts';

export function program(): Command {
  const p = new Command('shoal')
    .description('Fault-tolerant job scheduling on NATS: node actors, lease-based leadership, JetStream KV state.')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: commanderOutput.writeErr })
    .addHelpText('after', exitCodesHelp)
    .hook('preAction', (root, cmd) => {
      applyConfig(root, cmd);
      setJson(cmd.opts().json === true);
    });

  processCommands(p);
  clientCommands(p);
  scheduleCommands(p);
  demoCommand(p);
  chaosCommand(p);
  machinesCommand(p);
  eventsCommand(p);
  inspectCommand(p);
  benchCommand(p);
  policyCommand(p);
  return p;
}

function policyCommand(p: Command): void {
  const pc = p.command('policy').description('the learned bid scorer: train it (nodes score with it: shoal node --policy)');
  pc.command('train')
    .description(
      'train the MLP bid scorer on the built-in cluster model (heterogeneous nodes, Poisson and bursty arrivals, heavy-tailed work, ' +
        'node failures) by the cross-entropy method, and write it as ONNX with its feature spec beside it (.json); the same seed ' +
        'gives the same bytes. Default: rewrites the shipped model, policies/model/bid-scorer.onnx',
    )
    .option('--seed <n>', 'random seed', positiveInt('--seed'), 1)
    .option('--out <file.onnx>', 'where to write the model (its spec goes beside it as .json)')
    .option('--iterations <n>', 'cross-entropy iterations (default 30)', positiveInt('--iterations'))
    .option('--population <n>', 'candidates per iteration (default 32)', positiveInt('--population'))
    .option('--json', 'print the model, its version and its losses as JSON')
    .action(async (options: { seed: number; out?: string; iterations?: number; population?: number }) => {
      const { trainModel } = await import('./policy.ts');
      const { model, spec } = trainModel(options);
      const t = spec.training;
      say(`wrote ${model} (${spec.version}) and its spec; ${t.episodes} simulated episodes`);
      say(
        `held-out loss (mean slowdown + 2 × Gini; lower is better): model ${t.loss.toFixed(3)}, heuristic ${
          t.heuristicLoss.toFixed(3)
        }, random network ${t.randomLoss.toFixed(3)}`,
      );
      for (const [w, x] of Object.entries(t.byWorkload)) {
        say(`  ${w}: model ${x.model.toFixed(3)}, heuristic ${x.heuristic.toFixed(3)}, random ${x.random.toFixed(3)}`);
      }
      result({ model, version: spec.version, training: t });
    });
}

function benchCommand(p: Command): void {
  p.command('bench')
    .description(
      'run the benchmark suite, each scenario in a process of its own on a fresh local cluster: overhead (submit → start and ' +
        'noop jobs/s beside a plain JetStream work queue and centralized placement), failover (leader killed and stopped), ' +
        'recovery (a checkpointing job killed at 25/50/75 %), load-under-faults (a steady stream while the leader is killed ' +
        'and a worker paused; exactly-once checked), preemption, phases, compare (placement strategies side by side), and, ' +
        'by name only, scale (10/50/100 nodes, 10,000 jobs: how each figure grows with the fleet) and memory (1,000,000 jobs: ' +
        "each node's RSS as they pass); writes report.md, " +
        'samples.csv, samples.json and SVG charts into --out',
    )
    .argument('[scenario...]', 'which scenarios (default: all but scale, memory and stage0)')
    .option('--quick', 'fewer jobs and rounds: the whole suite in under 3 minutes')
    .option('--out <dir>', 'where the report goes', 'bench-report')
    .option('--json', 'print the files written as JSON (progress goes to stderr)')
    .action(async (names: string[], options: { quick?: boolean; out: string; json?: boolean }) => {
      const { spawn } = await import('node:child_process');
      const { fileURLToPath } = await import('node:url');
      const { tsCommand } = await import('../harness/spawn.ts');
      const suite = fileURLToPath(new URL('../bench/suite.ts', import.meta.url));
      const { existsSync } = await import('node:fs');
      if (!existsSync(suite)) {
        throw new InvalidArgumentError('the benchmarks run from a clone of the repository (the package ships no bench/)');
      }
      const [cmd, args] = tsCommand(suite, [
        ...names,
        ...(options.quick ? ['--quick'] : []),
        ...(options.json ? ['--json'] : []),
        '--out',
        options.out,
      ]);
      const child = spawn(cmd, args, { stdio: 'inherit' });
      process.exitCode = await new Promise<number>((r) => child.once('exit', (code) => r(code ?? 1)));
    });
}

function inspectCommand(p: Command): void {
  withConnection(
    p.command('inspect')
      .description(
        'serve a local web page that draws every node, coordinator, lease and job as its live statechart (active states marked), ' +
          'with a timeline to travel back to any event; prints the URL. --replay FILE opens a saved history (a chaos failure file) instead',
      )
      .option('--port <port>', 'port of the page (0: a free one)', (v) => Number(v), 8470)
      .option('--host <host>', 'address to listen on (loopback by default: the page is for you)', '127.0.0.1')
      .option(
        '--allow-host <name>',
        'a DNS name the page may be reached under besides localhost and IP addresses (requests naming any other host ' +
          'are refused: DNS rebinding); repeatable',
        (v: string, acc: string[] = []) => [...acc, v],
      )
      .option('--open', 'open the page in the default browser')
      .option('--replay <file>', 'a saved history to replay (chaos failure files, or `shoal events --json` output as a JSON array)')
      .option(
        '--stately',
        "add a button that opens Stately's hosted inspector (stately.ai/inspect, needs internet) and relays the nodes' machines to it",
      )
      .option('--history <duration>', 'how far back the live history starts', '15m')
      .option(
        '--keep-finished <duration>',
        'how long finished jobs stay in the jobs table after they finished',
        `${inspectorDefaults.keepFinishedMs / 60_000}m`,
      )
      .option('--json', 'print the page URL as JSON ({url, source}) once it is served'),
  ).action(async (o) => {
    const { runInspect } = await import('../inspector/server.ts');
    process.exitCode = await runInspect(o);
  });
}

function eventsCommand(p: Command): void {
  withConnection(
    p.command('events')
      .description(
        'print the event history (every transition of every node, coordinator, lease and job, from the events stream) as ' +
          'time, node, kind, actor, from → to (event, epoch or attempt); --follow keeps printing new ones',
      )
      .option('--follow', 'keep following new events (Ctrl-C stops)')
      .option('--job <id>', "only this job's events")
      .option('--node <id>', 'only events recorded by this node')
      .option('--kind <kind>', 'only node, coordinator, lease or job events')
      .option('--since <duration>', 'only the last e.g. 30s, 10m, 2h, 1d (default: all that is stored)')
      .option('--json', 'one JSON object per line'),
  ).action(async (o) => {
    const { runEvents } = await import('./events.ts');
    process.exitCode = await runEvents(o);
  });
}

function machinesCommand(p: Command): void {
  const m = p.command('machines').description('the XState machines Shoal runs (node, coordinator, lease, job)');
  m.command('export')
    .description(
      'write every machine as JSON (a config createMachine() turns back into the machine), TS (a createMachine module to import into ' +
        "Stately's editor), Mermaid or Graphviz (diagrams); one file per machine and format: <machine>.machine.<json|ts|mmd|dot>",
    )
    .option('--format <formats>', 'json, ts, mermaid, dot, or all; comma-separated', 'all')
    .option('--out <dir>', 'directory to write into (created if missing)', 'machines-export')
    .option('--markdown <file>', 'also refresh the Mermaid diagrams between <!-- machine:NAME --> and <!-- /machine:NAME --> in this file')
    .option('--json', 'print the files written as JSON')
    .action(async (options: { format: string; out: string; markdown?: string }) => {
      const { runMachinesExport } = await import('./machines.ts');
      process.exitCode = runMachinesExport(options);
    });
}

/** `node` and `up`: processes that run Shoal. */
function processCommands(p: Command): void {
  nodeCommand(withConnection(p.command('node')));

  p.command('up')
    .description(
      'start a local cluster: nats-server(s) plus N node processes; prints the NATS URL, node ids and pids; Ctrl-C stops everything it started',
    )
    .option('--nodes <n>', 'node processes to start', positiveInt('--nodes'), 3)
    .addOption(
      new Option('--cluster <servers>', 'nats-servers: 1, or a 3-server JetStream cluster (replicas 3)').choices(['1', '3']).default('1'),
    )
    .option('--port <port>', 'client port of the (first) nats-server; 0 picks a free one', (v) => Number(v), 4222)
    .option(
      '--lease-ttl <ms>',
      `lease TTL in ms for the new cluster (default ${defaults.leaseTtlMs}; ${defaults.replicatedLeaseTtlMs} with --cluster 3)`,
      positiveInt('--lease-ttl'),
    )
    .option('--slots <n>', 'slots per node', positiveInt('--slots'), defaults.slots)
    .addOption(new Option('--runtime <runtime>', 'runtime of the node processes').choices(['node', 'deno']).default('node'))
    .option('--prefix <prefix>', 'prefix of every subject, bucket and stream', defaults.prefix)
    .option('--metrics-port <port>', 'Prometheus metrics: node 1 on this port, node 2 on the next, and so on', portNumber('--metrics-port'))
    .option(
      '--leaf <n>',
      "edge sites: N leaf-node nats-servers without JetStream, linked to the core (which gets JetStream domain 'core'), " +
        'each with one edge node e<i> (--js-domain core --label zone=edge); submit --label zone=edge steers jobs there',
      nonNegativeInt('--leaf'),
    )
    .option('--restart', 'supervise the node processes: restart one that exits (a drain, a crash), as systemd Restart=always would')
    .option(
      '--auth <dir>',
      'secure the servers: refuse anonymous connections; users admin, node and client with their subject permissions (docs/security.md); ' +
        'writes DIR/admin.json, DIR/node.json, DIR/client.json (connect files: shoal --connect FILE, or any nats.js connect()) and DIR/auth.conf',
    )
    .option(
      '--json',
      'print a JSON line when the cluster is ready ({event: ready, nats, connect, nodes, status}) and one per node that exits; log lines as JSON',
    )
    .argument('[node flags...]', 'any `shoal node` flag (--jobs, --io-slots, --label, --placement, --allow-exec, …): given to every node')
    .allowUnknownOption()
    .action(
      async (
        nodeFlags: string[],
        options: {
          nodes: number;
          cluster: string;
          port: number;
          leaseTtl?: number;
          slots: number;
          runtime: 'node' | 'deno';
          prefix: string;
          metricsPort?: number;
          auth?: string;
          restart?: boolean;
          leaf?: number;
          json?: boolean;
        },
      ) => {
        const { runUp } = await import('./up.ts');
        const nodeArgs = [...nodeFlagsForUp(nodeFlags), ...(options.json ? ['--json'] : [])];
        const { json: _json, ...up } = options;
        process.exitCode = await runUp({ ...up, cluster: Number(options.cluster), leaseTtlMs: options.leaseTtl, nodeArgs });
      },
    );
}

function demoCommand(p: Command): void {
  p.command('demo')
    .description(
      'end-to-end demo: 3 nodes run 30 primes jobs while the leader and a worker are killed with SIGKILL; every job must finish exactly once with the true count. `demo failover` instead kills and stops leaders only. Exits non-zero if a check fails',
    )
    .argument('[scenario]', 'jobs or failover', 'jobs')
    .option('--lease-ttl <ms>', 'lease TTL in ms', positiveInt('--lease-ttl'), demoLeaseTtlMs)
    .option('--jobs <n>', 'jobs to run (jobs scenario)', positiveInt('--jobs'), 30)
    .option('--json', 'print the checks as JSON ({passed, failed, totalMs, checks}); progress goes to stderr')
    .action(async (scenario: string, options: { leaseTtl: number; jobs: number }) => {
      if (scenario === 'failover') {
        const { runDemo } = await import('./demo.failover.ts');
        process.exitCode = await runDemo({ leaseTtlMs: options.leaseTtl });
      } else if (scenario === 'jobs') {
        const { runJobsDemo } = await import('./demo.jobs.ts');
        process.exitCode = await runJobsDemo({ leaseTtlMs: options.leaseTtl, jobs: options.jobs });
      } else {
        throw new InvalidArgumentError(`unknown scenario '${scenario}' (jobs or failover)`);
      }
    });
}

function chaosCommand(p: Command): void {
  p.command('chaos')
    .description(
      'property-based chaos: fast-check generates fault schedules (kill -9 nodes and the leader, SIGSTOP past or within the lease TTL, ' +
        'kill -9 a nats-server, partitions and latency through per-node TCP proxies, job bursts), plays each against real processes, ' +
        'lets the cluster converge and checks the whole history. On failure: the seed, the shrunk schedule, and a file to --replay. ' +
        'Exits non-zero on any violation',
    )
    .option('--runs <n>', 'schedules to generate and run (default 5), or simulated cases with --sim (default 1000)', positiveInt('--runs'))
    .option('--seed <n>', 'fast-check seed (printed by every run) to regenerate the same schedules', (v) => Number.parseInt(v, 10))
    .option('--nodes <n>', 'node processes (with --sim: simulated nodes per case; default 2 to 4)', positiveInt('--nodes'))
    .addOption(
      new Option('--servers <n>', 'nats-servers: 1, or a 3-server JetStream cluster (replicas 3)').choices(['1', '3']).default('3'),
    )
    .option('--duration <ms>', 'faults are drawn within this window', positiveInt('--duration'), 12_000)
    .option(
      '--lease-ttl <ms>',
      `lease TTL (default ${chaosLeaseTtlMs(3)} with 3 servers, ${chaosLeaseTtlMs(1)} with 1)`,
      positiveInt('--lease-ttl'),
    )
    .option('--shrink-runs <n>', 'at most this many extra real runs to shrink a failing schedule', (v) => Number(v), 8)
    .option('--sim', 'run the model-based simulation instead (pure machines, in-memory KV, virtual clock: thousands of cases in seconds)')
    .option('--replay <file>', 'replay the schedule saved in a failure file')
    .option('--out <dir>', 'where a failure file is written', '.')
    .option('--verbose', 'print each schedule and every fault as it is injected')
    .option('--json', 'print the outcome as JSON ({seed, runs or cases, failed, violations, failureFile}); the tables go to stderr')
    .option(
      '--leaf',
      'the last node runs at an edge site behind a leaf-node nats-server; schedules also cut the leaf link (cut-leaf); needs --servers 3',
    )
    .action(
      async (
        options: {
          runs?: number;
          seed?: number;
          nodes?: number;
          servers: string;
          duration: number;
          leaseTtl?: number;
          shrinkRuns: number;
          sim?: boolean;
          replay?: string;
          out: string;
          verbose?: boolean;
          leaf?: boolean;
        },
      ) => {
        const { runChaosCli } = await optional(() => import('./chaos.ts'), 'fast-check', 'shoal chaos');
        process.exitCode = await runChaosCli({ ...options, servers: options.servers === '1' ? 1 : 3 });
      },
    );
}

/** Loads the code of a command that needs an optional dependency; when it is not installed, says which and how to add it. */
async function optional<T>(load: () => Promise<T>, pkg: string, command: string): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(`'${pkg}'`)) {
      throw new Error(`${command} needs the optional dependency ${pkg}, which is not installed (npm install ${pkg})`, { cause: err });
    }
    throw err;
  }
}
