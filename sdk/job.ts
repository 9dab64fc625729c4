// A job type as users declare it (`defineJob`): its name, its input's schema
// (any Standard Schema: zod, valibot, arktype…), its retry policy and timeout,
// and its handler. Pure data and types: the client takes a definition to type
// a submit and its result; the worker runs it.
import { type RetryPolicy, type TypeSettings, typeSettingsSchema } from '../api/contract.ts';
import type { JobCtx } from '../node/handlers.ts';
import { standardParse, type StandardSchemaV1 } from '../node/input.schemas.ts';

export type { StandardSchemaV1 };

/** What a schema gives a handler (its output type); `unknown` without a schema. */
export type InferOutput<S> = S extends StandardSchemaV1<unknown, infer O> ? O : unknown;
/** What a submit must give (the schema's input type); `unknown` without a schema. */
export type InferInput<S> = S extends StandardSchemaV1<infer I, unknown> ? I : unknown;

/** A job type: what `defineJob` returns, what `Worker.start({ jobs })` runs and `client.submit(def, input)` takes. */
export type JobDefinition<Input = unknown, Result = unknown, Parsed = Input> = {
  readonly type: string;
  readonly input: StandardSchemaV1<Input, Parsed> | undefined;
  readonly retry: RetryPolicy | undefined;
  readonly timeoutMs: number | undefined;
  readonly retentionMs: number | undefined;
  readonly concurrency: number | undefined;
  readonly handler: (input: Parsed, ctx: JobCtx) => Promise<Result> | Result;
  /** Types only: never set. */
  readonly '~types'?: { input: Input; result: Result };
};

// deno-lint-ignore no-explicit-any
export type AnyJobDefinition = JobDefinition<any, any, any>;
/** The input a submit of this definition takes. */
export type InputOfJob<D> = D extends { readonly '~types'?: { input: infer I } } ? I : unknown;
/** The result a job of this definition resolves with. */
export type ResultOfJob<D> = D extends { readonly '~types'?: { result: infer R } } ? Awaited<R> : unknown;

/** Job type names become NATS subject tokens: letters, digits, `_`, `$` or `-`. */
const typeName = /^[A-Za-z0-9_$-]{1,128}$/;

/**
 * Declare a job type. Input and result types are inferred from the schema and the handler.
 * Throws at once on a bad name or settings (no worker or submit needed to find out).
 */
export function defineJob<S extends StandardSchemaV1 | undefined = undefined, R = unknown>(def: {
  type: string;
  input?: S;
  retry?: RetryPolicy;
  timeoutMs?: number;
  /** How long its finished jobs' records stay (ms, at least 1 s). */
  retentionMs?: number;
  /** At most this many of its jobs assigned or running at once across the cluster; the rest wait queued. */
  concurrency?: number;
  handler: (input: InferOutput<S>, ctx: JobCtx) => Promise<R> | R;
}): JobDefinition<InferInput<S>, Awaited<R>, InferOutput<S>> {
  if (!typeName.test(def.type)) throw new TypeError(`defineJob: type '${def.type}' must be 1-128 letters, digits, _, $ or -`);
  if (typeof def.handler !== 'function') throw new TypeError(`defineJob(${def.type}): handler must be a function`);
  if (def.input !== undefined && typeof def.input?.['~standard']?.validate !== 'function') {
    throw new TypeError(`defineJob(${def.type}): input must be a Standard Schema (zod, valibot, arktype…)`);
  }
  const settings = typeSettingsSchema.safeParse({
    retry: def.retry,
    timeoutMs: def.timeoutMs,
    retentionMs: def.retentionMs,
    concurrency: def.concurrency,
  });
  if (!settings.success) {
    throw new TypeError(`defineJob(${def.type}): ${settings.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return {
    type: def.type,
    input: def.input as StandardSchemaV1<InferInput<S>, InferOutput<S>> | undefined,
    retry: def.retry,
    timeoutMs: def.timeoutMs,
    retentionMs: def.retentionMs,
    concurrency: def.concurrency,
    handler: def.handler as (input: InferOutput<S>, ctx: JobCtx) => Promise<Awaited<R>>,
  };
}

/** A definition's settings as the cluster keeps them. */
export function settingsOf(def: AnyJobDefinition): TypeSettings {
  return {
    ...(def.retry ? { retry: def.retry } : {}),
    ...(def.timeoutMs !== undefined ? { timeoutMs: def.timeoutMs } : {}),
    ...(def.retentionMs !== undefined ? { retentionMs: def.retentionMs } : {}),
    ...(def.concurrency !== undefined ? { concurrency: def.concurrency } : {}),
  };
}

/** The input as the definition's schema parses it, or its problems (`input.<path>: <message>`); no schema: as it is. */
export async function parseInput(def: AnyJobDefinition, input: unknown): Promise<{ value: unknown } | { problems: string[] }> {
  return def.input ? await standardParse(def.input, input) : { value: input };
}
