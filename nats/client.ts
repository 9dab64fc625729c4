// Calling the public API from TypeScript: JSON over request/reply, with the
// micro service's error headers turned back into an ApiError. Calls that do no
// harm when repeated (reads, waits, a submit that names its id) are retried
// with short attempts, so a request lost with a node that just died costs
// one attempt, not the whole timeout.
import { type NatsConnection, TimeoutError } from '@nats-io/transport-node';
import { encodeJson } from '../store/json.ts';
import { defaults } from '../base/defaults.ts';
import { ApiError } from '../base/errors.ts';
import { isNoResponders } from './probe.ts';
import type { Names } from './subjects.ts';
import type { EndpointName, ReplyOf, RequestOf } from '../api/contract.ts';
import { sleep } from '../base/time.ts';

/** Calls whose repeat does no harm: reads, waits, and a submit that names its id (the same body is answered once, as created). */
export function isIdempotent(endpoint: string, body: unknown): boolean {
  if (['status', 'jobs.get', 'jobs.list', 'jobs.wait'].includes(endpoint)) return true;
  return endpoint === 'jobs.submit' && typeof (body as { id?: unknown } | null)?.id === 'string';
}

/** Worth another attempt: no answer in time, or a node still starting. */
const retryable = (err: unknown) => err instanceof TimeoutError || (err instanceof ApiError && err.code === 'starting');

/**
 * Call an endpoint; `timeoutMs` bounds the whole call. Idempotent calls are
 * tried in attempts of a third of it (at least `apiAttemptMs`); a wait asks for the job in
 * slices of at most `waitSliceMs` (its own `timeoutMs` stays the total).
 */
export async function callApi<E extends EndpointName>(
  nc: NatsConnection,
  n: Names,
  endpoint: E,
  body: RequestOf<E> = {} as RequestOf<E>,
  timeoutMs: number = defaults.apiTimeoutMs,
): Promise<ReplyOf<E>> {
  type T = ReplyOf<E>;
  if (!isIdempotent(endpoint, body)) return await callOnce<T>(nc, n, endpoint, body, timeoutMs);
  const began = Date.now();
  const left = () => timeoutMs - (Date.now() - began);
  const wait = endpoint === 'jobs.wait' ? body as { id: string; timeoutMs?: number } : null;
  const waitMs = wait ? (wait.timeoutMs ?? defaults.waitTimeoutMs) : 0;
  for (let delay: number = defaults.retryFirstMs;; delay = Math.min(defaults.retryMaxMs, delay * 2)) {
    const waitLeft = waitMs - (Date.now() - began);
    const slice = wait ? Math.max(1, Math.min(waitLeft, defaults.waitSliceMs)) : 0;
    const attempt = Math.max(defaults.apiAttemptMs, timeoutMs / 3);
    const attemptMs = Math.max(1, Math.min(left(), wait ? slice + attempt : attempt));
    try {
      return await callOnce<T>(nc, n, endpoint, wait ? { ...wait, timeoutMs: slice } : body, attemptMs);
    } catch (err) {
      const sliceOver = wait && err instanceof ApiError && err.status === 408;
      if (sliceOver && waitMs - (Date.now() - began) > 0 && left() > 0) continue;
      if (sliceOver) throw new ApiError(408, 'timeout', `job '${wait.id}' not finished within ${waitMs} ms`, { cause: err });
      if (!retryable(err) || left() <= delay) throw err;
      await sleep(delay);
    }
  }
}

async function callOnce<T>(nc: NatsConnection, n: Names, endpoint: string, body: unknown, timeoutMs: number): Promise<T> {
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
