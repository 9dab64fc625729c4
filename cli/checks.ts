// The demos' verdict: named checks, a table, a closing line, an exit code.
import Table from 'cli-table3';
import { result, say } from '../base/output.ts';

export type Check = { what: string; ok: boolean; detail: string };

/** Print the checks and return the exit code (0 only if all passed). */
export function reportChecks(checks: Check[], startedAt: number): number {
  const t = new Table({ head: ['check', 'result', 'detail'], style: { head: [], border: [] } });
  for (const ch of checks) t.push([ch.what, ch.ok ? 'ok' : 'FAILED', ch.detail]);
  const failed = checks.filter((ch) => !ch.ok).length;
  say(t.toString());
  say(
    `${checks.length - failed} passed, ${failed} failed; total ${((Date.now() - startedAt) / 1000).toFixed(1)} s; every process stopped.`,
  );
  result({ passed: checks.length - failed, failed, totalMs: Date.now() - startedAt, checks });
  return failed === 0 ? 0 : 1;
}
