// The one codec for internal messages (CBOR via cbor-x) and the public API's
// JSON. Decoding always validates the shape, so garbage becomes a CodecError,
// never an exception deep inside a handler.
import './cbor.runtime.ts';
import { Encoder } from 'cbor-x';
import type { z } from 'zod';
import { CodecError } from '../base/errors.ts';

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const text = new TextEncoder();
const untext = new TextDecoder('utf-8', { fatal: true });

export function encode(value: unknown): Uint8Array {
  return cbor.encode(value);
}

function validate<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new CodecError(`${what}: field '${field}': ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
  }
  return parsed.data;
}

export function decode<S extends z.ZodType>(schema: S, bytes: Uint8Array, what: string): z.infer<S> {
  return validate(schema, decodeRaw(bytes, what), what);
}

/** CBOR without the schema check: for what Shoal itself wrote where only it may write (its own buckets); callers check the shape they rely on. */
export function decodeRaw(bytes: Uint8Array, what: string): unknown {
  try {
    return cbor.decode(bytes);
  } catch (cause) {
    throw new CodecError(`${what}: not valid CBOR`, { cause });
  }
}

export function encodeJson(value: unknown): Uint8Array {
  return text.encode(JSON.stringify(value));
}

/** An empty body decodes as `{}`, so `nats req shoal.api.status ''` works. */
export function decodeJson<S extends z.ZodType>(schema: S, bytes: Uint8Array, what: string): z.infer<S> {
  let raw: unknown = {};
  if (bytes.length > 0) {
    let str: string;
    try {
      str = untext.decode(bytes);
    } catch (cause) {
      throw new CodecError(`${what}: body is not UTF-8 text`, { cause });
    }
    if (str.trim().length > 0) {
      try {
        raw = JSON.parse(str);
      } catch (cause) {
        throw new CodecError(`${what}: body is not valid JSON (${(cause as Error).message})`, { cause });
      }
    }
  }
  return validate(schema, raw, what);
}
