// Job input schemas: the built-ins' and a module's (Standard Schema or JSON
// Schema) checks, the messages they give, and the checker that asks other
// nodes for a type it does not know (cached, misses too).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { builtinSchemas, checkOf, jsonSchemaOf, moduleSchemas, typeCatalog } from '../../node/input.schemas.ts';
import type { Clock } from '../../base/time.ts';
import { defaults } from '../../base/defaults.ts';

const fakeClock = () => {
  let now = 1_000;
  const clock = { now: () => now, mono: () => now, setTimeout: () => 0, clearTimeout: () => {} } as unknown as Clock;
  return { clock, advance: (ms: number) => (now += ms) };
};

describe('job input schemas', () => {
  test('built-ins: a bad field is named with what was expected; good inputs pass', async () => {
    const primes = checkOf(builtinSchemas.primes!);
    assert.equal(await primes({ limit: 300_000, pauseMs: 100 }), null);
    const [problem] = (await primes({ limit: 'a lot' }))!;
    assert.match(problem!, /^input\.limit: .*expected number/i);
    assert.match((await primes({ limit: 1 }))!.join(), /input\.limit: .*>=\s*2/);
    assert.match((await checkOf(builtinSchemas.sleep!)({ ms: 5, msec: 1 }))!.join(), /msec/);
    assert.match((await checkOf(builtinSchemas.exec!)({ cmd: 'ls', args: [1] }))!.join(), /^input\.args\.0: /);
  });

  test('a JSON Schema checks the same way, and a zod schema becomes one for other nodes', async () => {
    const json = { type: 'object', properties: { x: { type: 'integer', minimum: 0 } }, required: ['x'] };
    assert.equal(await checkOf(json)({ x: 3 }), null);
    assert.match((await checkOf(json)({ x: -1 }))!.join(), /^input\.x: /);
    const zod = z.object({ x: z.number() });
    const said = jsonSchemaOf(zod)!;
    assert.equal((said as { type: string }).type, 'object');
    assert.match((await checkOf(said)({ x: 'no' }))!.join(), /^input\.x: /);
  });

  test("a module's schemas: only for its handlers, only schemas", () => {
    assert.deepEqual(Object.keys(moduleSchemas({ a: z.string() }, ['a'], 'm.ts')), ['a']);
    assert.deepEqual(moduleSchemas(undefined, ['a'], 'm.ts'), {});
    assert.throws(() => moduleSchemas({ b: z.string() }, ['a'], 'm.ts'), /m\.ts: schemas\.b names no exported handler/);
    assert.throws(() => moduleSchemas({ a: 42 }, ['a'], 'm.ts'), /schemas\.a is neither a Standard Schema/);
    assert.throws(() => moduleSchemas([1], ['a'], 'm.ts'), /schemas\.0 names no exported handler/);
  });

  test('the catalog uses its own schema, else asks once per type and remembers the answer, a miss too', async () => {
    const { clock, advance } = fakeClock();
    const asked: string[] = [];
    const types = typeCatalog({ schemas: { primes: builtinSchemas.primes! }, settings: { noop: { timeoutMs: 5 } } }, {
      clock,
      ask: async (type) => {
        asked.push(type);
        return type === 'resize'
          ? {
            schema: { type: 'object', required: ['url'], properties: { url: { type: 'string' } } },
            settings: { retry: { maxAttempts: 5 } },
          }
          : null;
      },
    });
    const check = types.check;
    assert.match((await check('primes', {}))!.join(), /input\.limit/);
    assert.match((await check('resize', { url: 3 }))!.join(), /input\.url/);
    assert.equal(await check('resize', { url: 'x' }), null);
    assert.equal(await check('mystery', { anything: true }), null);
    assert.equal(await check('mystery', 1), null);
    assert.equal(await check('no.such type', 1), null, 'a name no handler can have is not asked about');
    assert.deepEqual(asked, ['resize', 'mystery']);
    assert.deepEqual(await types.settings('resize'), { retry: { maxAttempts: 5 } }, "another node's settings for its type");
    assert.deepEqual(await types.settings('noop'), { timeoutMs: 5 }, 'its own');
    assert.deepEqual(await types.settings('mystery'), {}, 'none known: the defaults');
    assert.deepEqual(asked, ['resize', 'mystery'], 'settings come from the same cached answer');
    advance(defaults.schemaCacheMs);
    await check('mystery', 1);
    assert.deepEqual(asked, ['resize', 'mystery', 'mystery']);
  });

  test('no answer (a timeout) accepts the input rather than refusing work', async () => {
    const types = typeCatalog({ schemas: {} }, { clock: fakeClock().clock, ask: () => Promise.reject(new Error('timeout')) });
    assert.equal(await types.check('resize', { url: 3 }), null);
    assert.deepEqual(await types.settings('resize'), {});
  });
});
