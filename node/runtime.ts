// The little the rest of the code needs to know about the runtime it is on.
import { hostname } from 'node:os';

type DenoGlobal = { version: { deno: string } };

export function runtimeName(): string {
  const deno = (globalThis as { Deno?: DenoGlobal }).Deno;
  return deno ? `deno ${deno.version.deno}` : `node ${process.versions.node}`;
}

export function hostName(): string {
  return hostname();
}
