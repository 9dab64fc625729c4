// The shape of each job type's input, checked at submit: the built-ins'
// schemas (zod), and a `--jobs` module's `schemas` export, whose entries are
// any Standard Schema (zod, valibot, arktype, …) or a JSON Schema object.
// A node answers other nodes' questions with a type's JSON Schema, so a submit
// is checked by whichever node the API request reached.
import { z } from 'zod';
import { defaults } from '../base/defaults.ts';
import type { Clock } from '../base/time.ts';
import { ApiError } from '../base/errors.ts';
import type { TypeSettings } from '../api/contract.ts';

/** The built-in `primes`' bounds: each chunk ends soon (it yields only between chunks), and so does the job. */
export const primesMax = { limit: 100_000_000, chunk: 50_000 }; // a chunk near the limit: ~30 ms here

/** The Standard Schema interface (standardschema.dev) with its inferred types: what Shoal calls, and what `defineJob` infers from. */
export type StandardSchemaV1<Input = unknown, Output = Input> = {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
};
type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
    readonly issues: ReadonlyArray<
      { readonly message: string; readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined }
    >;
  };
/** Any Standard Schema, whatever its types. */
export type StandardSchema = StandardSchemaV1;

/** Why an input was refused for its type: each problem (the first five) as `input.<path>: <message>`. */
export const inputMismatch = (type: string, problems: string[]) =>
  `input does not match job type '${type}': ${problems.slice(0, 5).join('; ')}`;

/** A submit's input refused for its type (400 `bad_input`, nothing stored). */
export const badInput = (type: string, problems: string[]) => new ApiError(400, 'bad_input', inputMismatch(type, problems));

/** A submit with its type's settings (`defineJob`) filled in where it left them out; the cluster's defaults come after. */
export function withTypeSettings<R extends { maxAttempts?: number; timeoutMs?: number; retentionMs?: number }>(req: R, s: TypeSettings): R {
  return {
    ...req,
    ...(req.maxAttempts === undefined && s.retry?.maxAttempts !== undefined ? { maxAttempts: s.retry.maxAttempts } : {}),
    ...(req.timeoutMs === undefined && s.timeoutMs !== undefined ? { timeoutMs: s.timeoutMs } : {}),
    ...(req.retentionMs === undefined && s.retentionMs !== undefined ? { retentionMs: s.retentionMs } : {}),
  };
}

/** A job type's input check: null when the input fits, else each problem as `input.<path>: <what was expected>`. */
export type InputCheck = (input: unknown) => Promise<string[] | null>;

const week = 7 * 24 * 3_600_000;

/** The built-in types' inputs. */
export const builtinSchemas: Record<string, z.ZodType> = {
  sleep: z.object({ ms: z.number().int().min(0).max(week) }).strict(),
  // Bounded so the handler yields (a checkpoint per chunk) and ends: it runs on the node's own thread.
  primes: z.object({
    limit: z.number().int().min(2).max(primesMax.limit),
    chunk: z.number().int().min(1).max(primesMax.chunk).optional(),
    pauseMs: z.number().min(0).max(week).optional(),
  }).strict(),
  fail: z.object({ message: z.string().max(4096).optional() }).strict(),
  exec: z.object({
    cmd: z.string().min(1),
    args: z.array(z.string()).optional(),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
  }).strict(),
};

export function isStandardSchema(v: unknown): v is StandardSchema {
  const s = (v as { '~standard'?: { validate?: unknown } } | null)?.['~standard'];
  return typeof s?.validate === 'function';
}

function pathOf(path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined): string {
  return ['input', ...(path ?? []).map((p) => String(typeof p === 'object' ? p.key : p))].join('.');
}

/** The input as the schema parses it (defaults filled, transforms applied), or each problem as `input.<path>: <message>`. */
export async function standardParse(schema: StandardSchema, input: unknown): Promise<{ value: unknown } | { problems: string[] }> {
  const r = await schema['~standard'].validate(input);
  if (r.issues) return { problems: r.issues.map((i) => `${pathOf(i.path)}: ${i.message}`) };
  return { value: r.value };
}

export function standardCheck(schema: StandardSchema): InputCheck {
  return async (input) => {
    const r = await standardParse(schema, input);
    return 'problems' in r ? r.problems : null;
  };
}

/** A JSON Schema as a check (through zod's converter). */
export function jsonSchemaCheck(schema: Record<string, unknown>): InputCheck {
  return standardCheck(z.fromJSONSchema(schema as never) as StandardSchema);
}

/** The JSON Schema of a type's input, to tell other nodes; null when the schema cannot say (a non-zod Standard Schema without one). */
export function jsonSchemaOf(schema: StandardSchema | Record<string, unknown>): Record<string, unknown> | null {
  if (schema instanceof z.ZodType) {
    try {
      return z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
    } catch {
      return null; // a schema JSON Schema cannot say (dates, custom checks): only nodes that load the type check it
    }
  }
  if (!isStandardSchema(schema)) return schema;
  return null;
}

/**
 * A module's `schemas` export: type → Standard Schema or JSON Schema object.
 * Refuses a schema for a type the module has no handler for, or an entry that is neither.
 */
export function moduleSchemas(
  raw: unknown,
  handlers: readonly string[],
  source: string,
): Record<string, StandardSchema | Record<string, unknown>> {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null) throw new Error(`${source}: 'schemas' must be an object of job type → schema`);
  const out: Record<string, StandardSchema | Record<string, unknown>> = {};
  for (const [type, s] of Object.entries(raw)) {
    if (!handlers.includes(type)) throw new Error(`${source}: schemas.${type} names no exported handler`);
    if (!isStandardSchema(s) && (typeof s !== 'object' || s === null || Array.isArray(s))) {
      throw new Error(`${source}: schemas.${type} is neither a Standard Schema (zod, valibot, arktype…) nor a JSON Schema object`);
    }
    if (!isStandardSchema(s)) jsonSchemaCheck(s); // a JSON Schema zod cannot read fails here, at start-up
    out[type] = s;
  }
  return out;
}

export function checkOf(schema: StandardSchema | Record<string, unknown>): InputCheck {
  return isStandardSchema(schema) ? standardCheck(schema) : jsonSchemaCheck(schema);
}

/** Job type names that can be asked about on a subject (every exported handler's name is one). */
const askable = /^[A-Za-z0-9_$-]{1,128}$/;

/** What a node tells others about a job type it loads: its input's JSON Schema (null: none to tell) and its settings. */
export type TypeInfo = { schema: Record<string, unknown> | null; settings: TypeSettings };

/** A submit's view of the job types: its input's check and the type's settings (defaults for the job). */
export type TypeCatalog = {
  check(type: string, input: unknown): Promise<string[] | null>;
  settings(type: string): Promise<TypeSettings>;
};

/**
 * The job types as a submit sees them: this node's own, else what another node answers (`ask`, cached for a
 * while, misses too). A type nobody describes: any input is accepted and the cluster's defaults apply.
 */
export function typeCatalog(
  local: { schemas: Record<string, StandardSchema | Record<string, unknown>>; settings?: Record<string, TypeSettings> },
  options: { ask?: (type: string) => Promise<TypeInfo | null>; clock: Clock },
): TypeCatalog {
  type Known = { check: InputCheck | null; settings: TypeSettings };
  const own = new Map<string, Known>();
  for (const type of new Set([...Object.keys(local.schemas), ...Object.keys(local.settings ?? {})])) {
    const schema = local.schemas[type];
    own.set(type, { check: schema ? checkOf(schema) : null, settings: local.settings?.[type] ?? {} });
  }
  const remote = new Map<string, Known & { until: number }>();
  const lookup = async (type: string): Promise<Known | null> => {
    if (own.has(type)) return own.get(type)!;
    if (!options.ask || !askable.test(type)) return null;
    const hit = remote.get(type);
    if (hit && hit.until > options.clock.now()) return hit;
    let known: Known = { check: null, settings: {} };
    try {
      const info = await options.ask(type);
      if (info) known = { check: info.schema ? jsonSchemaCheck(info.schema) : null, settings: info.settings };
    } catch {
      // no answer, or a schema this zod cannot read: accepted as before schemas existed
    }
    remote.set(type, { ...known, until: options.clock.now() + defaults.schemaCacheMs });
    return known;
  };
  return {
    check: async (type, input) => (await lookup(type))?.check?.(input) ?? null,
    settings: async (type) => (await lookup(type))?.settings ?? {},
  };
}
