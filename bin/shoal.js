#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader in this same process.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
