// The public API: a NATS micro service (so `$SRV.PING`/`$SRV.INFO` discovery
// works) speaking JSON, or CBOR when the request says `Content-Type:
// application/cbor`. Every node serves it in one queue group, except the
// reads that every node answers (`everyNode`: a get or a wait sent the moment
// a node died is answered by the live ones; the first reply wins).
import { type Service, type ServiceMsg, Svcm } from '@nats-io/services';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';
import { type EndpointName, endpoints, type ParsedRequestOf, type ReplyOf } from '../api/contract.ts';
import { decode, decodeJson, encode, encodeJson } from '../store/codec.ts';
import { defaults } from '../base/defaults.ts';
import { ApiError, CodecError } from '../base/errors.ts';
import { isStorageFull } from '../store/bucket.ts';
import type { Names } from './subjects.ts';
import type { ReplyGuard } from './reply.ts';

export const cborContentType = 'application/cbor';

/** One endpoint as a node serves it: the contract's request schema, its handler, and who answers. */
export type Endpoint = {
  schema: z.ZodType;
  handle: (req: never) => Promise<unknown>;
  /** Answered by every node, not one of the queue group: cheap, idempotent reads only. */
  everyNode?: boolean;
};

/** Declare the handler of a contract endpoint: it gets the request as validated and must answer with the contract's reply. */
export function endpoint<E extends EndpointName>(
  name: E,
  handle: (req: ParsedRequestOf<E>) => Promise<ReplyOf<E>>,
  options: { everyNode?: boolean } = {},
): Endpoint {
  return { schema: endpoints[name].request, handle, everyNode: options.everyNode };
}

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof CodecError) return new ApiError(400, 'bad_request', err.message, { cause: err });
  if (isStorageFull(err)) {
    const why = (err as Error).message;
    return new ApiError(
      507,
      'storage_full',
      `JetStream storage for jobs is full (${why}): nothing was stored; finished jobs are deleted after the retention, or raise the bucket's max_bytes`,
      { cause: err },
    );
  }
  return new ApiError(500, 'internal', (err as Error)?.message ?? String(err), { cause: err });
}

/** A request's outcome: the encoded reply, or the error to answer with. */
export type Reply = { ok: true; data: Uint8Array } | { ok: false; error: ApiError };

/**
 * One request through an endpoint, transport-free: size limit, decoding and
 * validation, the handler, encoding. Never throws. The micro service answers
 * with it; the simulation calls it directly, so both run the same checks.
 */
export async function serveRequest(name: string, ep: Endpoint, data: Uint8Array, cbor = false): Promise<Reply> {
  try {
    if (data.length > defaults.apiMaxRequestBytes) {
      throw new ApiError(413, 'too_large', `${name} request is ${data.length} bytes; the limit is ${defaults.apiMaxRequestBytes}`);
    }
    const what = `${name} request`;
    const req = cbor ? decode(ep.schema, data, what) : decodeJson(ep.schema, data, what);
    const out = await (ep.handle as (req: unknown) => Promise<unknown>)(req);
    return { ok: true, data: cbor ? encode(out) : encodeJson(out) };
  } catch (err) {
    return { ok: false, error: toApiError(err) };
  }
}

/** What answering needs of a request: the micro service's message, or a plain one (`serveEndpoints`). */
type Answerable = Pick<ServiceMsg, 'data' | 'respond' | 'respondError'> & { headers?: { get(k: string): string } };

async function answer(name: string, ep: Endpoint, msg: Answerable): Promise<void> {
  const reply = await serveRequest(name, ep, msg.data, msg.headers?.get('Content-Type') === cborContentType);
  try {
    if (reply.ok) {
      msg.respond(reply.data);
      return;
    }
    // Where every node answers, one still starting stays silent and lets a ready one answer; so does one
    // that is not the node a request is about.
    if (ep.everyNode && (reply.error.code === 'starting' || reply.error.code === 'elsewhere')) return;
    const e = reply.error;
    // Header values cannot hold CR/LF (an error may quote the request): the full text goes in the body.
    const header = e.message.replace(/[\r\n]+/g, ' ').slice(0, 512);
    msg.respondError(e.status, header, encodeJson({ error: { code: e.code, message: e.message } }));
  } catch {
    // Never let a reply that cannot be sent take the node down.
  }
}

/**
 * The connection the micro service subscribes through: every request it would
 * handle (the endpoints, and the `$SRV` discovery subjects the library answers
 * itself) reaches it only when its reply subject is an inbox. A request naming
 * any other reply is dropped before it is decoded, so it changes nothing.
 */
function guarded(nc: NatsConnection, guard: ReplyGuard): NatsConnection {
  return new Proxy(nc, {
    get(target, prop) {
      if (prop === 'subscribe') {
        return (subject: string, opts: Parameters<NatsConnection['subscribe']>[1] = {}) => {
          const callback = opts.callback;
          if (!callback) return target.subscribe(subject, opts);
          return target.subscribe(subject, {
            ...opts,
            callback: (err, msg) => {
              if (err || guard.allows(msg.reply, subject)) return callback(err, msg);
            },
          });
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

export async function startApi(
  nc: NatsConnection,
  n: Names,
  served: Partial<Record<EndpointName, Endpoint>>,
  meta: { version: string; node: string; guard: ReplyGuard },
): Promise<Service> {
  // @nats-io/services pins an older nats-core whose connection type differs only nominally.
  const svc = await new Svcm(guarded(nc, meta.guard) as unknown as ConstructorParameters<typeof Svcm>[0]).add({
    name: n.serviceName,
    version: meta.version,
    description: 'Shoal job scheduler control API',
    metadata: { node: meta.node },
  });
  const group = svc.addGroup(n.apiGroup);
  for (const [name, ep] of Object.entries(served) as Array<[string, Endpoint]>) {
    // Endpoint names are single tokens; the subject keeps the dots (shoal.api.jobs.submit).
    group.addEndpoint(name.replaceAll('.', '-'), {
      subject: name,
      // A queue group of its own on each node: every node gets the request.
      queue: ep.everyNode ? `${n.apiGroup}.every.${meta.node}` : undefined,
      handler: (_err, msg) => void answer(name, ep, msg),
      metadata: { schema: 'JSON object; see docs/api.md' },
    });
  }
  return svc;
}

/**
 * Serve some endpoints outside the micro service, for as long as a role lasts (the dispatcher's waits and
 * status): each subscriber gets every request (no queue group), answers as the service does, and replies
 * only to inboxes. Returns the stop.
 */
export function serveEndpoints(
  nc: NatsConnection,
  n: Names,
  served: Partial<Record<EndpointName, Endpoint>>,
  guard: ReplyGuard,
): () => void {
  const subs = (Object.entries(served) as Array<[string, Endpoint]>).map(([name, ep]) =>
    nc.subscribe(n.api(name), {
      callback: (_err, msg) => {
        if (!guard.allows(msg.reply, name)) return;
        const respondError = (code: number, description: string, data?: Uint8Array) => {
          const h = headers();
          h.set('Nats-Service-Error-Code', String(code));
          h.set('Nats-Service-Error', description);
          return msg.respond(data, { headers: h });
        };
        void answer(name, ep, { data: msg.data, headers: msg.headers, respond: (data) => msg.respond(data), respondError });
      },
    })
  );
  return () => subs.forEach((s) => s.unsubscribe());
}
