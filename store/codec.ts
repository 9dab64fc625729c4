// The one codec for internal messages (CBOR via cbor-x), beside the public
// API's JSON (json.ts, re-exported here). Decoding always validates the shape,
// so garbage becomes a CodecError, never an exception deep inside a handler.
import './cbor.runtime.ts';
import { Encoder } from 'cbor-x';
import type { z } from 'zod';
import { CodecError } from '../base/errors.ts';
import { validate } from './json.ts';

export { decodeJson, encodeJson } from './json.ts';

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

export function encode(value: unknown): Uint8Array {
  return cbor.encode(value);
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
