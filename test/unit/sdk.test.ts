// The package's API without a cluster: defineJob's checks and inferred types,
// retry backoff by a type's policy, and a worker's input parsing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineJob, type InputOfJob, parseInput, type ResultOfJob, settingsOf } from '../../sdk/job.ts';
import { defaults, retryBackoffMs } from '../../base/defaults.ts';
import { NonRetryableError } from '../../base/errors.ts';
import { JobCancelledError, JobFailedError } from '../../sdk/errors.ts';
import type { JobRecord } from '../../api/contract.ts';

const resize = defineJob({
  type: 'resize',
  input: z.object({ url: z.string().url(), width: z.number().default(256) }),
  retry: { maxAttempts: 5, backoff: 'exponential', baseMs: 200, jitter: true },
  timeoutMs: 60_000,
  handler: async (input) => ({ url: input.url, width: input.width }),
});

// Checked by tsc (the suite's type check), never run: what a submit takes and a result gives.
export function typeChecks(): void {
  const input: InputOfJob<typeof resize> = { url: 'https://x' }; // width has a default: optional on input
  const result = null as unknown as ResultOfJob<typeof resize>;
  const n: number = result.width;
  // @ts-expect-error url must be a string
  const bad: InputOfJob<typeof resize> = { url: 3 };
  // @ts-expect-error the result has no such field
  void result.nope;
  void [input, n, bad];
}

describe('defineJob', () => {
  test('refuses a bad name, handler, schema or settings at once, naming the field', () => {
    const handler = async () => null;
    assert.throws(() => defineJob({ type: 'no spaces', handler }), /type 'no spaces' must be 1-128 letters/);
    assert.throws(() => defineJob({ type: 'a', handler: 42 as never }), /handler must be a function/);
    assert.throws(() => defineJob({ type: 'a', input: {} as never, handler }), /input must be a Standard Schema/);
    assert.throws(() => defineJob({ type: 'a', retry: { maxAttempts: 0 }, handler }), /retry\.maxAttempts/);
    assert.throws(() => defineJob({ type: 'a', retry: { backoff: 'linear' as never }, handler }), /retry\.backoff/);
    assert.throws(() => defineJob({ type: 'a', timeoutMs: -1, handler }), /timeoutMs/);
  });

  test('its settings are what the cluster keeps; its schema parses (defaults filled) or names each problem', async () => {
    assert.deepEqual(settingsOf(resize), {
      retry: { maxAttempts: 5, backoff: 'exponential', baseMs: 200, jitter: true },
      timeoutMs: 60_000,
    });
    assert.deepEqual(settingsOf(defineJob({ type: 'plain', handler: () => 1 })), {});
    assert.deepEqual(await parseInput(resize, { url: 'https://x.test/' }), { value: { url: 'https://x.test/', width: 256 } });
    const bad = await parseInput(resize, { url: 'nope', width: 'wide' });
    assert.ok('problems' in bad);
    assert.deepEqual(bad.problems.map((p) => p.split(':')[0]), ['input.url', 'input.width']);
  });
});

describe('retry backoff by policy', () => {
  test('exponential by default from the cluster base, capped; fixed stays; jitter draws from half to all', () => {
    assert.deepEqual([1, 2, 3].map((f) => retryBackoffMs(f)), [1, 2, 4].map((k) => k * defaults.retryBackoffBaseMs));
    assert.equal(retryBackoffMs(30), defaults.retryBackoffMaxMs);
    assert.deepEqual([1, 2, 5].map((f) => retryBackoffMs(f, { backoff: 'fixed', baseMs: 700 })), [700, 700, 700]);
    assert.equal(retryBackoffMs(4, { baseMs: 100, maxMs: 500 }), 500);
    assert.equal(retryBackoffMs(3, { baseMs: 100, jitter: true }, () => 0), 200);
    assert.equal(retryBackoffMs(3, { baseMs: 100, jitter: true }, () => 0.999999), 400);
  });
});

describe('errors', () => {
  test('a failed or cancelled result carries the record and says why', () => {
    const record = { id: 'j1', type: 'resize', error: 'boom', attempts: [{}, {}], state: 'failed' } as unknown as JobRecord;
    const failed = new JobFailedError(record);
    assert.equal(failed.record, record);
    assert.match(failed.message, /job 'j1' \(resize\) failed after 2 attempt\(s\): boom/);
    assert.match(new JobCancelledError({ ...record, state: 'cancelled' }).message, /was cancelled/);
    assert.equal(new NonRetryableError('x').name, 'NonRetryableError');
  });
});

describe('the package manifests', () => {
  test('deno.json (JSR) exports the same entries as package.json, at the same version', async () => {
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default;
    const deno = (await import('../../deno.json', { with: { type: 'json' } })).default;
    assert.equal(deno.version, pkg.version);
    const npmEntries = Object.fromEntries(
      Object.entries(pkg.exports).filter(([k]) => k !== './package.json').map(([k, v]) => [k, (v as { default: string }).default]),
    );
    const asSource = (p: string) => p.replace(/^\.\/dist\//, './').replace(/\.js$/, '.ts');
    assert.deepEqual(Object.fromEntries(Object.entries(npmEntries).map(([k, v]) => [k, asSource(v)])), deno.exports);
  });
});
