// Entry point of the `shoal` command (bin/shoal.js, `npm run shoal`, spawned nodes).
import { program } from './program.ts';

// `shoal events | head`: a reader that went away ends the command quietly, as in other Unix tools.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  await program().parseAsync(process.argv);
} catch (err) {
  const message = (err as Error).message;
  process.stderr.write(`shoal: ${message}\n`);
  if (/permissions? violation/i.test(message)) {
    process.stderr.write(
      'shoal: the credentials you connected with may not do this (a client role calls only shoal.api.jobs.* and shoal.api.status; ' +
        'draining needs admin): see docs/security.md\n',
    );
  }
  process.exitCode = process.exitCode || 1;
}
