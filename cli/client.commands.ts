// The `shoal` commands that are thin clients of the public API (status,
// submit, jobs, job, cancel, retry, drain) and `doctor`.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { jobStates } from '../api/contract.ts';
import { parseDuration } from '../base/time.ts';
import { defaults } from '../base/defaults.ts';
import { type Common, withConnection } from './client.ts';
import { label, nonNegativeInt, positiveInt } from './args.ts';

/** Thin clients of the public API: `status`, `submit`, `jobs`, `job`, `cancel`, `retry`, `drain`; and `doctor`. */
export function clientCommands(p: Command): void {
  withConnection(
    p.command('doctor').description(
      'check a cluster and say what is wrong and how to fix it: connection, server version, JetStream, bucket settings ' +
        '(TTL, replicas, history), live nodes and a leader, clock skew between nodes and the server, and what these credentials ' +
        'may do (public API, JetStream API, admin endpoints); exit 1 when a check fails',
    ).option('--json', 'print the checks as JSON'),
  ).action(async (options: Common & { json?: boolean }) => {
    const { formatChecks, runDoctor } = await import('./doctor.ts');
    const { checks, code } = await runDoctor(options);
    process.stdout.write(`${options.json ? JSON.stringify({ checks, ok: code === 0 }, null, 2) : formatChecks(checks)}\n`);
    process.exitCode = code;
  });
  withConnection(
    p.command('status')
      .description('show the leader, its epoch and the live nodes (via the shoal.api.status request)')
      .option('--json', 'print the raw JSON reply')
      .option('--timeout <ms>', 'how long to wait for an answer', positiveInt('--timeout'), defaults.apiTimeoutMs),
  ).action(async (options: Common & { json?: boolean; timeout: number }) => {
    const { runStatus } = await import('./status.ts');
    process.exitCode = await runStatus(options);
  });

  withConnection(
    p.command('submit <type>')
      .description('submit a job (idempotent by --id); --wait shows its progress and exits 0 only if it succeeds')
      .option('--input <json>', "the job's input as JSON, or @file.json")
      .option('--priority <0-9>', 'higher runs first (default 5)', (v) => Number(v))
      .option('--id <id>', 'job id (default: random); resubmitting the same id and body returns the existing job')
      .option('--max-attempts <n>', 'attempts before the job fails (default 3)', positiveInt('--max-attempts'))
      .option('--timeout <ms>', 'per-attempt timeout (default 10 min)', positiveInt('--timeout'))
      .option('--mem-mb <n>', 'run only on a node with this much memory free (MB; held while the job runs)', positiveInt('--mem-mb'))
      .option('--gpu <n>', 'run only on a node with this many GPUs free (held while the job runs)', nonNegativeInt('--gpu'))
      .option('--label <key=value>', 'run only on a node with this label (repeatable; all must match)', label)
      .option(
        '--pending-timeout <ms>',
        'fail the job when no live node could satisfy its requirements for this long (default: wait for one forever)',
        positiveInt('--pending-timeout'),
      )
      .option(
        '--delay <duration>',
        'a delayed job: not started before this long from now (30s, 10m, 2h, 1d)',
        (v) => parseDuration(v, '--delay'),
      )
      .option(
        '--at <time>',
        'a delayed job: not started before this time (ISO 8601, e.g. 2026-12-24T18:00:00Z)',
        (v) => {
          const t = Date.parse(v);
          if (Number.isNaN(t)) throw new InvalidArgumentError(`'${v}' is not a time: use ISO 8601, e.g. 2026-12-24T18:00:00Z`);
          return t;
        },
      )
      .option('--wait', 'wait for the result, with a progress bar')
      .option('--json', 'print JSON'),
  ).action(async (type: string, o) => {
    const { runSubmit } = await import('./jobs.ts');
    process.exitCode = await runSubmit(type, o);
  });

  withConnection(
    listFlags(
      p.command('jobs')
        .description(
          'list jobs, oldest first (--newest: newest first); `--state failed` is the dead-letter view (shoal retry runs them again)',
        ),
    ).option('--json', 'print JSON'),
  ).action(async (o) => {
    const { runJobs } = await import('./jobs.ts');
    process.exitCode = await runJobs(o);
  });

  withConnection(
    listFlags(
      p.command('retry [id]')
        .description(
          'run a failed or cancelled job again, as a new job <id>-r<n> with its type, input and options (the old record stays as it ended); ' +
            'or every job --state failed (or cancelled) selects, with --type and --since. Retrying the same job twice answers the same new job',
        ),
    ).option('--json', 'print JSON'),
  ).action(async (id: string | undefined, o) => {
    const { runRetry } = await import('./jobs.ts');
    process.exitCode = await runRetry(id, o);
  });

  withConnection(
    p.command('job <id>').description("one job's record and attempt history").option('--json', 'print JSON'),
  ).action(async (id: string, o) => {
    const { runJob } = await import('./jobs.ts');
    process.exitCode = await runJob(id, o);
  });

  withConnection(p.command('cancel <id>').description('cancel a queued or running job').option('--json', 'print JSON')).action(
    async (id: string, o) => {
      const { runCancel } = await import('./jobs.ts');
      process.exitCode = await runCancel(id, o);
    },
  );

  withConnection(
    p.command('drain <node>').description(
      'ask a node to hand its running jobs back (they resume from checkpoints elsewhere), step down and exit',
    ).option('--json', 'print JSON'),
  ).action(async (id: string, o) => {
    const { runDrain } = await import('./jobs.ts');
    process.exitCode = await runDrain(id, o);
  });
  withConnection(
    p.command('rollout').description(
      'rolling restart: drain each live node in turn (its jobs resume elsewhere from checkpoints), wait until it is gone, ' +
        'then until its supervisor has restarted it and it is ready again (systemd Restart=always, Kubernetes, shoal up --restart), ' +
        'then the next; stops at the first node that does not come back. Needs admin credentials with --auth',
    ),
  )
    .argument('[node...]', 'only these nodes, in this order (default: every live node)')
    .option('--timeout <ms>', 'how long to wait for a node to leave, and again to come back', positiveInt('--timeout'), 120_000)
    .option('--json', 'print the nodes restarted as JSON ({restarted}); progress goes to stderr')
    .action(async (nodes: string[], options: Common & { timeout: number; json?: boolean }) => {
      const { runRollout } = await import('./rollout.ts');
      process.exitCode = await runRollout({ ...options, nodes });
    });
}

/** `shoal schedule add|list|pause|resume|remove`: recurring jobs. */
export function scheduleCommands(p: Command): void {
  const sched = p.command('schedule').description(
    "recurring jobs: a cron expression (in a time zone) and the job each tick submits, as job <name>-<tick ms>, exactly once per tick (the leader's; a new leader submits the ticks it missed within 60 s)",
  );
  withConnection(
    sched.command('add <name>')
      .description('add a schedule; 409 when the name is taken (--replace to change it)')
      .requiredOption('--cron <expr>', 'five fields (minute hour day month weekday), six with seconds first, or @hourly, @daily, @weekly …')
      .option('--tz <zone>', 'the IANA time zone the fields are read in (default UTC), e.g. Europe/Berlin')
      .requiredOption('--type <type>', 'the job type each tick submits')
      .option('--input <json>', "the job's input as JSON, or @file.json")
      .option('--priority <0-9>', 'its priority (default 5)', (v) => Number(v))
      .option('--max-attempts <n>', 'its attempts before it fails', positiveInt('--max-attempts'))
      .option('--timeout <ms>', 'its per-attempt timeout', positiveInt('--timeout'))
      .option('--replace', 'replace a schedule of that name')
      .option('--json', 'print JSON'),
  ).action(async (name: string, o) => {
    const { runScheduleAdd } = await import('./schedules.ts');
    process.exitCode = await runScheduleAdd(name, o);
  });
  withConnection(sched.command('list').description('every schedule with its last and next tick').option('--json', 'print JSON'))
    .action(async (o) => {
      const { runScheduleList } = await import('./schedules.ts');
      process.exitCode = await runScheduleList(o);
    });
  for (
    const [verb, what] of [['pause', 'stop submitting (until resume)'], ['resume', 'submit again from the next tick on'], [
      'remove',
      'delete it',
    ]] as const
  ) {
    withConnection(sched.command(`${verb} <name>`).description(what).option('--json', 'print JSON')).action(async (name: string, o) => {
      const { runScheduleChange } = await import('./schedules.ts');
      process.exitCode = await runScheduleChange(verb, name, o);
    });
  }
}

/** The flags that select jobs (`jobs`, `retry`). */
function listFlags(c: Command): Command {
  return c
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(jobStates))
    .option('--type <type>', 'only jobs of this type')
    .option('--since <duration>', 'only jobs created within this long (30m, 2h, 1d)', (v) => parseDuration(v, '--since'))
    .option('--newest', 'newest first')
    .option('--limit <n>', 'at most this many', positiveInt('--limit'));
}
