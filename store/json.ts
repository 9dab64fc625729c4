// The public API's JSON codec: what clients send and get back. Apart from the
// CBOR codec (codec.ts) so a client needs no CBOR library. Decoding validates
// the shape: garbage becomes a CodecError that names the field.
import type { z } from 'zod';
import { CodecError } from '../base/errors.ts';

const text = new TextEncoder();
const untext = new TextDecoder('utf-8', { fatal: true });

export function validate<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new CodecError(`${what}: field '${field}': ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
  }
  return parsed.data;
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
