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
  process.stderr.write(`shoal: ${(err as Error).message}\n`);
  process.exitCode = process.exitCode || 1;
}
