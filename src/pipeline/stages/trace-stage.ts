import { context, INVALID_SPAN_CONTEXT, isSpanContextValid, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import type { Stage } from '../compose.js';
import type { DecodedContext, ValidatedContext } from '../context.js';
import { withSpan } from '../narrow.js';
import type { EndpointTelemetry } from '../endpoint-telemetry.js';

/**
 * Starts the delivery's consumer span right after decoding (the producer's trace context is in the
 * envelope); the endpoint ends the span after settling. Its context is made active for the turn by
 * {@link activateSpanStage}.
 */
export function traceStage(telemetry: EndpointTelemetry): Stage<DecodedContext> {
  return (ctx, next) => next(withSpan(ctx, telemetry.start(ctx)));
}

/** A turn has made a consumer span active, in any endpoint of the process. */
let activated = false;

/**
 * First in the turn: runs the rest of it with the delivery's consumer span active, so the handler's
 * own spans and its `ctx.publish`/`ctx.send` are its children. A turn that waited starts when the
 * one before it frees its slot or key, inside that one's callback: without this, it would run in
 * the context of the message before it.
 *
 * Without an SDK and without a producer context the span is invalid: the turn runs in the root
 * context. That costs nothing until a turn has made a span active (only then can a later turn, of
 * this endpoint or of another one whose delivery it set off, inherit one).
 */
export function activateSpanStage(): Stage<ValidatedContext> {
  return (ctx, next) => {
    const span = ctx.span;
    const sc = span?.spanContext();
    if (span === undefined || sc === undefined || sc === INVALID_SPAN_CONTEXT || !isSpanContextValid(sc)) {
      return activated ? context.with(ROOT_CONTEXT, next, undefined, ctx) : next(ctx);
    }
    activated = true;
    return context.with(trace.setSpan(ROOT_CONTEXT, span), next, undefined, ctx);
  };
}
