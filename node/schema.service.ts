// Job types across the cluster: a node answers for the types it loads (their
// input's JSON Schema and their settings) on `shoal.types.<type>.schema`, and
// asks there for a type it does not load when a submit for it reaches it.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { defaults } from '../base/defaults.ts';
import { isNoResponders } from '../nats/probe.ts';
import type { ReplyGuard } from '../nats/reply.ts';
import type { Names } from '../nats/subjects.ts';
import type { JobTypes } from './handlers.ts';
import { jsonSchemaOf, type TypeInfo } from './input.schemas.ts';
import { z } from 'zod';
import { typeSettingsSchema } from '../api/contract.ts';

/** Answer other nodes' questions about this node's job types that have something to tell (a JSON Schema or settings). */
export function serveSchemas(
  nc: NatsConnection,
  n: Names,
  types: Pick<JobTypes, 'schemas' | 'settings'>,
  guard: ReplyGuard,
): Subscription[] {
  const names = new Set([...Object.keys(types.schemas), ...Object.keys(types.settings ?? {})]);
  return [...names].flatMap((type) => {
    const schema = types.schemas[type];
    const info: TypeInfo = { schema: schema ? jsonSchemaOf(schema) : null, settings: types.settings?.[type] ?? {} };
    if (!info.schema && Object.keys(info.settings).length === 0) return [];
    const body = new TextEncoder().encode(JSON.stringify(info));
    return [nc.subscribe(n.typeSchema(type), { callback: (_err, msg) => void guard.respond(msg, 'type schema', body) })];
  });
}

/** Ask the cluster about a job type: null when no node tells anything ("no responders"). */
export function askType(nc: NatsConnection, n: Names) {
  return async (type: string): Promise<TypeInfo | null> => {
    let body: unknown;
    try {
      body = (await nc.request(n.typeSchema(type), undefined, { timeout: defaults.schemaAskTimeoutMs })).json();
    } catch (err) {
      if (isNoResponders(err)) return null;
      throw err;
    }
    const info = typeInfoSchema.safeParse(body);
    // A node of an earlier release answers with the bare JSON Schema.
    return info.success ? info.data : { schema: body as Record<string, unknown>, settings: {} };
  };
}

const typeInfoSchema = z.object({ schema: z.record(z.string(), z.unknown()).nullable(), settings: typeSettingsSchema }).strict();
