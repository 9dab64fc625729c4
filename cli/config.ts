// `--config FILE` (or SHOAL_CONFIG): settings from a JSON file, keyed by the
// long flag names (`"slots": 8`, `"io-slots": 2` or `"ioSlots": 2`, `"label":
// {"zone": "edge"}`, `"preempt": false` for `--no-preempt`). One precedence for
// every command: a flag beats an env var beats the file beats the default. A
// key no command knows is an error; a key this command lacks is ignored, so one
// file serves `shoal node` and `shoal status` alike.
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, type Option } from 'commander';

export const configEnv = 'SHOAL_CONFIG';

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function allOptions(root: Command): Map<string, Option> {
  const out = new Map<string, Option>();
  const walk = (c: Command) => {
    for (const o of c.options) out.set(o.attributeName(), o);
    c.commands.forEach(walk);
  };
  walk(root);
  return out;
}

function readConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`${path} is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${path} must hold a JSON object of settings, e.g. {"nats": "nats://host:4222", "slots": 8}`);
  }
  return value as Record<string, unknown>;
}

/** A file value as the option's own parser takes it: each of a list (or `key=value` of an object) in turn. */
function parse(options: Option, v: unknown, where: string): unknown {
  if (options.negate || typeof v === 'boolean') {
    if (typeof v !== 'boolean') throw new InvalidArgumentError(`${where} must be true or false`);
    return v;
  }
  const items = Array.isArray(v) ? v : typeof v === 'object' && v !== null ? Object.entries(v).map(([k, x]) => `${k}=${x}`) : [v];
  let acc: unknown = undefined;
  for (const item of items) {
    const s = String(item);
    if (options.argChoices && !options.argChoices.includes(s)) {
      throw new InvalidArgumentError(`${where} must be one of ${options.argChoices.join(', ')}`);
    }
    try {
      acc = options.parseArg ? options.parseArg(s, acc) : s;
    } catch (err) {
      throw new InvalidArgumentError(`${where}: ${(err as Error).message}`);
    }
  }
  return acc;
}

/** Before a command runs: fill what neither a flag nor an env var set from the config file. */
export function applyConfig(root: Command, cmd: Command): void {
  // Only commands that take --config (those that connect); SHOAL_CONFIG reaches them as that option's env var.
  if (!cmd.options.some((o) => o.attributeName() === 'config')) return;
  const path = (cmd.opts() as { config?: string }).config;
  if (!path) return;
  const known = allOptions(root);
  const mine = new Map(cmd.options.map((o) => [o.attributeName(), o]));
  for (const [key, value] of Object.entries(readConfig(path))) {
    const attr = camel(key);
    if (!known.has(attr) || attr === 'config') {
      throw new InvalidArgumentError(`unknown setting '${key}' in ${path}: settings are long flag names, e.g. "nats", "slots", "io-slots"`);
    }
    const o = mine.get(attr);
    if (!o) continue;
    const source = cmd.getOptionValueSource(attr);
    if (source === 'cli' || source === 'env') continue;
    cmd.setOptionValueWithSource(attr, parse(o, value, `'${key}' in ${path}`), 'config');
  }
}
