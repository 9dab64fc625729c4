// The `shoal` command's exit codes: what went wrong, for scripts to branch on.
// `shoal --help` lists them (program.ts); docs/cli.md too.
import { CommanderError } from 'commander';
import { ApiError, NatsConnectError } from '../base/errors.ts';

export const exitCodes = {
  ok: 0,
  /** Anything else: a request refused (400, 404, 409, 413, 507), a node that failed. */
  error: 1,
  /** A flag or argument is wrong (the message says which). */
  usage: 2,
  /** `submit --wait`: the job ended failed or cancelled. */
  jobFailed: 3,
  /** A wait or request ran out of time (408, or no answer). */
  timeout: 4,
  /** No NATS connection, or no node answers. */
  unavailable: 5,
} as const;

export const exitCodesHelp = `
Exit codes:
  0  success
  1  an error: a request refused (bad input, unknown job, conflict, too large, storage full), a node that failed
  2  usage: a flag or argument is wrong
  3  submit --wait: the job ended failed or cancelled
  4  timeout: a wait or request ran out of time
  5  unavailable: no NATS connection, or no Shoal node answers`;

export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
  if (err instanceof NatsConnectError) return exitCodes.unavailable;
  if (err instanceof ApiError) {
    if (err.status === 408) return exitCodes.timeout;
    if (err.code === 'no_nodes') return exitCodes.unavailable;
    return exitCodes.error;
  }
  if ((err as Error | null)?.name === 'TimeoutError') return exitCodes.timeout;
  return exitCodes.error;
}

/** Commander's error output, noted: a usage error it printed itself is not printed twice. */
export const commanderOutput = {
  printed: false,
  writeErr(text: string): void {
    commanderOutput.printed = true;
    process.stderr.write(text);
  },
};
