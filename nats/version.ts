// Which nats-server versions Shoal accepts, in one place: the launcher checks
// a binary before starting it, a node checks the server it connected to.

export function parseNatsServerVersion(text: string): string | null {
  const m = /v?(\d+\.\d+\.\d+)/.exec(text);
  return m ? m[1]! : null;
}

/** >= 2.10: clustered KV compare-and-swap is broken before 2.9.21 (docs/design.md, nats-server version). */
export function isSupportedNatsServerVersion(v: string): boolean {
  const [major = 0, minor = 0] = v.split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 10);
}

/**
 * Set only by the test that shows what goes wrong on nats-server 2.9.10: it
 * lets a node run against a server Shoal otherwise refuses.
 */
export const allowOldServerEnv = 'SHOAL_UNSAFE_ALLOW_OLD_NATS';
