// `--config FILE`: one precedence (flag > env > file > default), the flags' own
// parsers applied to file values, unknown keys refused, other commands' keys ignored.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { label, positiveInt } from '../../cli/args.ts';
import { applyConfig } from '../../cli/config.ts';
import { withConnection } from '../../cli/client.ts';
import { nodeCommand, nodeOptionsOf } from '../../cli/node.command.ts';
import { type NodeOptions, resolveNodeConfig } from '../../node/config.ts';
import { defaultPreemption } from '../../policies/preemption.ts';
import { defaults } from '../../base/defaults.ts';

const dir = mkdtempSync(join(tmpdir(), 'shoal-config-'));
const file = (name: string, value: unknown) => {
  const p = join(dir, name);
  writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value));
  return p;
};

/** A program shaped like shoal's: `node` with an env-backed --nats, parsed and repeatable flags; `other` with its own. */
async function run(args: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  let got: Record<string, unknown> = {};
  try {
    const p = new Command('t').exitOverride().hook('preAction', (root, cmd) => applyConfig(root, cmd));
    p.command('node')
      .addOption(new Option('--nats <url>').env('T_NATS_URL'))
      .option('--slots <n>', '', positiveInt('--slots'), 4)
      .option('--io-slots <n>', '', positiveInt('--io-slots'), 16)
      .option('--label <kv>', '', label)
      .option('--no-preempt')
      .addOption(new Option('--placement <s>').choices(['auction', 'pull']).default('auction'))
      .addOption(new Option('--config <file>').env('SHOAL_CONFIG'))
      .action((o) => void (got = o));
    p.command('other').option('--depth <n>').action(() => {});
    await p.parseAsync(['node', 't', ...args]);
    return got;
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  }
}

describe('config file', () => {
  const settings = file('shoal.json', {
    nats: 'nats://from-file:4222',
    slots: 7,
    'io-slots': 2,
    label: { zone: 'edge', disk: 'ssd' },
    preempt: false,
    placement: 'pull',
    depth: 3,
  });

  test('fills what no flag or env var set, through each flag’s own parser; another command’s keys are ignored', async () => {
    const o = await run(['node', '--config', settings]);
    assert.equal(o.nats, 'nats://from-file:4222');
    assert.equal(o.slots, 7);
    assert.equal(o.ioSlots, 2);
    assert.deepEqual(o.label, { zone: 'edge', disk: 'ssd' });
    assert.equal(o.preempt, false);
    assert.equal(o.placement, 'pull');
    assert.equal(o.depth, undefined);
  });

  test('a flag beats an env var beats the file beats the default', async () => {
    assert.equal((await run(['node', '--config', settings], { T_NATS_URL: 'nats://from-env:4222' })).nats, 'nats://from-env:4222');
    const flagged = await run(['node', '--config', settings, '--nats', 'nats://from-flag:4222', '--slots', '3'], {
      T_NATS_URL: 'nats://from-env:4222',
    });
    assert.equal(flagged.nats, 'nats://from-flag:4222');
    assert.equal(flagged.slots, 3);
    assert.equal(flagged.ioSlots, 2, 'the file still fills what the flags left');
    assert.equal((await run(['node'])).slots, 4, 'no file: the default');
  });

  test('SHOAL_CONFIG names the file when --config does not', async () => {
    assert.equal((await run(['node'], { SHOAL_CONFIG: settings })).slots, 7);
  });

  test('unknown keys, bad values and files that are not settings are refused, naming the file and the key', async () => {
    await assert.rejects(run(['node', '--config', file('typo.json', { slotz: 3 })]), /unknown setting 'slotz' in .*typo\.json/);
    await assert.rejects(run(['node', '--config', file('bad.json', { slots: -1 })]), /'slots' in .*bad\.json: --slots must be a positive/);
    await assert.rejects(run(['node', '--config', file('choice.json', { placement: 'magic' })]), /must be one of auction, pull/);
    await assert.rejects(run(['node', '--config', file('bool.json', { preempt: 'no' })]), /must be true or false/);
    await assert.rejects(run(['node', '--config', file('list.json', '[1, 2]')]), /must hold a JSON object/);
    await assert.rejects(run(['node', '--config', file('broken.json', '{"slots": ')]), /is not JSON/);
    await assert.rejects(run(['node', '--config', join(dir, 'missing.json')]), /cannot read the config file/);
  });
});

describe('node settings, resolved once', () => {
  /** The real `shoal node` flags, parsed (with --config) into node options; the action replaced so nothing starts. */
  async function nodeOptions(args: string[]): Promise<NodeOptions> {
    let got: NodeOptions = {};
    const p = new Command('t').exitOverride().hook('preAction', (root, cmd) => applyConfig(root, cmd));
    nodeCommand(withConnection(p.command('node')));
    p.commands[0]!.action((o) => void (got = nodeOptionsOf(o)));
    await p.parseAsync(['node', 't', 'node', ...args]);
    return got;
  }

  test('flags and the file give what was set; resolveNodeConfig fills every default, and nothing below does', async () => {
    const settings = file('node.json', { 'io-slots': 2, 'preempt-grace': 500, label: { zone: 'edge' } });
    const c = resolveNodeConfig(await nodeOptions(['--config', settings, '--slots', '3']));
    assert.deepEqual(c.capacity, { slots: 3, ioSlots: 2, memMb: Math.floor(totalmem() / 2 ** 20), gpu: 0, labels: { zone: 'edge' } });
    assert.deepEqual(c.preemption, { ...defaultPreemption, graceMs: 500 });
    assert.equal(c.placement, 'dispatch');
    assert.equal(c.policy, 'onnx');
    assert.equal(c.leaseTtlMs, null, 'adopt the bucket');
    assert.equal(c.metrics, null);
    assert.match(c.id, /^node-[0-9a-f]{8}$/);
    const bare = resolveNodeConfig(await nodeOptions([]));
    assert.equal(bare.capacity.slots, defaults.slots);
    assert.equal(bare.capacity.ioSlots, defaults.ioSlots);
    assert.deepEqual(bare.preemption, defaultPreemption);
    assert.equal(bare.allowExec, false);
  });

  test('an embedder’s options are checked, naming the setting', () => {
    assert.throws(() => resolveNodeConfig({ slots: 0 }), /slots must be a whole number ≥ 1/);
    assert.throws(() => resolveNodeConfig({ ioSlots: 1.5 }), /ioSlots must be a whole number ≥ 0/);
    assert.throws(() => resolveNodeConfig({ id: 'a.b' }), /node id must be letters/);
    assert.throws(() => resolveNodeConfig({ placement: 'magic' as never }), /placement must be dispatch, auction, centralized, pull/);
    assert.throws(() => resolveNodeConfig({ preemption: { graceMs: -1 } }), /preemption.graceMs/);
    assert.throws(() => resolveNodeConfig({ speed: 0 }), /speed must be a positive number/);
  });
});
