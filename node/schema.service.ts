// Job types' input schemas across the cluster: a node answers for the types it
// loads (as JSON Schema) on `shoal.types.<type>.schema`, and asks there for a
// type it does not load when a submit for it reaches it.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { defaults } from '../base/defaults.ts';
import { isNoResponders } from '../nats/probe.ts';
import type { ReplyGuard } from '../nats/reply.ts';
import type { Names } from '../nats/subjects.ts';
import type { JobTypes } from './handlers.ts';
import { jsonSchemaOf } from './input.schemas.ts';

/** Answer other nodes' questions about this node's job types' input schemas (those that have a JSON Schema). */
export function serveSchemas(nc: NatsConnection, n: Names, schemas: JobTypes['schemas'], guard: ReplyGuard): Subscription[] {
  return Object.entries(schemas).flatMap(([type, schema]) => {
    const json = jsonSchemaOf(schema);
    if (!json) return [];
    const body = new TextEncoder().encode(JSON.stringify(json));
    return [nc.subscribe(n.typeSchema(type), { callback: (_err, msg) => void guard.respond(msg, 'type schema', body) })];
  });
}

/** Ask the cluster for a job type's input JSON Schema: null when no node has one ("no responders"). */
export function askSchema(nc: NatsConnection, n: Names) {
  return async (type: string): Promise<Record<string, unknown> | null> => {
    try {
      return (await nc.request(n.typeSchema(type), undefined, { timeout: defaults.schemaAskTimeoutMs })).json();
    } catch (err) {
      if (isNoResponders(err)) return null;
      throw err;
    }
  };
}
