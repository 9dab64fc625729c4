// Calling the public API from TypeScript: JSON over request/reply, with the
// micro service's error headers turned back into an ApiError.
import type { NatsConnection } from '@nats-io/transport-node';
import { encodeJson } from './codec.ts';
import { defaults } from './defaults.ts';
import { ApiError, isNoResponders } from './errors.ts';
import type { Names } from './subjects.ts';

export async function callApi<T = unknown>(
  nc: NatsConnection,
  n: Names,
  endpoint: string,
  body: unknown = {},
  timeoutMs: number = defaults.apiTimeoutMs,
): Promise<T> {
  let msg;
  try {
    msg = await nc.request(n.api(endpoint), encodeJson(body), { timeout: timeoutMs });
  } catch (err) {
    if (isNoResponders(err)) {
      throw new ApiError(
        503,
        'no_nodes',
        `no Shoal node answers ${n.api(endpoint)}: start one with 'shoal up' or 'shoal node --nats URL'`,
        { cause: err },
      );
    }
    throw err;
  }
  const code = msg.headers?.get('Nats-Service-Error-Code');
  if (code) {
    let errCode = 'error';
    let message = msg.headers?.get('Nats-Service-Error') ?? 'error';
    try {
      const parsed = JSON.parse(msg.string()) as { error?: { code?: string; message?: string } };
      errCode = parsed.error?.code ?? errCode;
      message = parsed.error?.message ?? message;
    } catch {
      // the headers alone carry enough
    }
    throw new ApiError(Number(code), errCode, message);
  }
  return msg.json<T>();
}
