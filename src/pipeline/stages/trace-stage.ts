import { context, INVALID_SPAN_CONTEXT, isSpanContextValid, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import type { Stage } from '../compose.js';
import type { DecodedContext } from '../context.js';
import { withSpan } from '../narrow.js';
import type { EndpointTelemetry } from '../endpoint-telemetry.js';

/**
 * Starts the delivery's consumer span right after decoding (the producer's trace context is in the
 * envelope) and runs the rest of the pipeline with it active, so the handler's own spans and its
 * `ctx.publish`/`ctx.send` are its children. The endpoint ends the span after settling.
 *
 * Without an SDK and without a producer context the span is invalid and nothing is made active:
 * the stage costs one no-op span per message.
 */
export function traceStage(telemetry: EndpointTelemetry): Stage<DecodedContext> {
  return (ctx, next) => {
    const span = telemetry.start(ctx);
    const traced = withSpan(ctx, span);
    const sc = span.spanContext();
    if (sc === INVALID_SPAN_CONTEXT || !isSpanContextValid(sc)) return next(traced);
    return context.with(trace.setSpan(ROOT_CONTEXT, span), next, undefined, traced);
  };
}
