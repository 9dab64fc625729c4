// Entry point of the `shoal` command (bin/shoal.js, `npm run shoal`, spawned nodes).
import { program } from './program.ts';

try {
  await program().parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`shoal: ${(err as Error).message}\n`);
  process.exitCode = process.exitCode || 1;
}
