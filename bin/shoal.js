#!/usr/bin/env node
// The `shoal` command. An installed package runs its compiled JavaScript
// (dist/, built by `npm run build`); a clone of the repository runs the
// TypeScript sources through tsx's loader in this same process, so an edit
// needs no build.
import { existsSync } from 'node:fs';

const source = new URL('../cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/cli/main.js');
}
