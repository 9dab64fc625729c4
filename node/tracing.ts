// OpenTelemetry, when the application has it: the client puts the active
// span's context on a submit (W3C traceparent), and the runner wraps each
// attempt in a span that is that context's child, active while the handler
// runs (so the handler's own spans nest under it). `@opentelemetry/api` is
// looked for once per process; without it nothing is loaded and nothing done.
import type { JobRecord, TraceContext } from '../api/contract.ts';
import type { HandlerOutcome } from '../machines/job.rules.ts';

type Otel = typeof import('@opentelemetry/api');
let loaded: Promise<Otel | null> | null = null;

function otel(): Promise<Otel | null> {
  loaded ??= import('@opentelemetry/api').then((m) => m, () => null);
  return loaded;
}

/** The active span's context as a submit carries it; undefined without OpenTelemetry or an active span. */
export async function activeTrace(): Promise<TraceContext | undefined> {
  const api = await otel();
  if (!api || !api.trace.getSpan(api.context.active())) return undefined;
  const carrier: Record<string, string> = {};
  api.propagation.inject(api.context.active(), carrier);
  if (!carrier.traceparent) return undefined;
  return { traceparent: carrier.traceparent, ...(carrier.tracestate ? { tracestate: carrier.tracestate } : {}) };
}

/** Run an attempt inside its span `shoal.job <type>` (the submit's trace its parent); the span ends with the outcome. */
export async function attemptSpan(
  job: JobRecord,
  attempt: number,
  node: string,
  run: () => Promise<HandlerOutcome>,
): Promise<HandlerOutcome> {
  const api = await otel();
  if (!api) return await run();
  const parent = job.trace ? api.propagation.extract(api.ROOT_CONTEXT, { ...job.trace }) : api.ROOT_CONTEXT;
  const attributes = { 'shoal.job.id': job.id, 'shoal.job.type': job.type, 'shoal.job.attempt': attempt, 'shoal.node': node };
  return await api.trace.getTracer('shoal').startActiveSpan(
    `shoal.job ${job.type}`,
    { kind: api.SpanKind.CONSUMER, attributes },
    parent,
    async (span) => {
      try {
        const outcome = await run();
        if (!outcome.ok) span.setStatus({ code: api.SpanStatusCode.ERROR, message: outcome.error });
        return outcome;
      } finally {
        span.end();
      }
    },
  );
}
