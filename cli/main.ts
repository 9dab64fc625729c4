// Entry point of the `shoal` command (bin/shoal.js, `npm run shoal`, spawned nodes).
import { CommanderError } from 'commander';
import { program } from './program.ts';
import { commanderOutput, exitCodeOf } from './exit.codes.ts';

// `shoal events | head`: a reader that went away ends the command quietly, as in other Unix tools.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  await program().parseAsync(process.argv);
} catch (err) {
  process.exitCode = exitCodeOf(err);
  const message = (err as Error).message;
  // Commander prints its own parse errors (and --help and --version end here too); one thrown by a command's code it does not.
  if (!(err instanceof CommanderError && (commanderOutput.printed || err.exitCode === 0))) process.stderr.write(`shoal: ${message}\n`);
  if (/permissions? violation/i.test(message)) {
    process.stderr.write(
      'shoal: the credentials you connected with may not do this (a client role calls only shoal.api.jobs.* and shoal.api.status; ' +
        'draining needs admin): see docs/security.md\n',
    );
  }
}
