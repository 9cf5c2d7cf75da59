import {
  type Context,
  createTraceState,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  trace,
} from '@opentelemetry/api';

/**
 * W3C trace context as Sluice carries it: the CloudEvents Distributed Tracing extension attributes
 * in the envelope (`traceparent`, `tracestate`) and transport headers of the same names.
 *
 * Written and read here in W3C format directly, not through the global propagator: the CloudEvents
 * extension requires this format, and it keeps working when the application registered no
 * propagator (or another format for its HTTP traffic).
 */
export interface TraceFields {
  readonly traceparent: string;
  readonly tracestate?: string;
}

/** Transport header names (lower case, as W3C Trace Context names them). */
export const TraceHeader = { traceparent: 'traceparent', tracestate: 'tracestate' } as const;

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** The fields to inject for a span, or undefined when it has no valid context (no SDK, no parent). */
export function traceFieldsOf(span: Span): TraceFields | undefined {
  const sc = span.spanContext();
  if (sc === INVALID_SPAN_CONTEXT || !isSpanContextValid(sc)) return undefined;
  const traceparent = `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags.toString(16).padStart(2, '0')}`;
  const tracestate = sc.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/** Transport headers for the fields (a shared empty object without them). */
export function traceHeaders(fields: TraceFields | undefined): Readonly<Record<string, string>> {
  if (fields === undefined) return NO_HEADERS;
  return fields.tracestate === undefined
    ? { [TraceHeader.traceparent]: fields.traceparent }
    : { [TraceHeader.traceparent]: fields.traceparent, [TraceHeader.tracestate]: fields.tracestate };
}

// As @opentelemetry/core's W3CTraceContextPropagator: version ff and all-zero ids are invalid.
const TRACEPARENT = /^\s?((?!ff)[\da-f]{2})-((?![0]{32})[\da-f]{32})-((?![0]{16})[\da-f]{16})-([\da-f]{2})(-.*)?\s?$/;
/** Longer values are refused unread: the header is untrusted input. */
const MAX_TRACEPARENT = 512;

/** Parses a `traceparent` value; undefined when it is missing or malformed (never throws). */
export function parseTraceparent(traceparent: unknown, tracestate: unknown): SpanContext | undefined {
  if (typeof traceparent !== 'string' || traceparent.length > MAX_TRACEPARENT) return undefined;
  const match = TRACEPARENT.exec(traceparent);
  if (!match) return undefined;
  // Version 00 has exactly four parts; later versions may append more.
  if (match[1] === '00' && match[5] !== undefined) return undefined;
  const sc: SpanContext = {
    traceId: match[2] as string,
    spanId: match[3] as string,
    traceFlags: Number.parseInt(match[4] as string, 16),
    isRemote: true,
  };
  if (typeof tracestate === 'string' && tracestate.length > 0) {
    try {
      sc.traceState = createTraceState(tracestate);
    } catch {
      // A malformed tracestate is dropped; the traceparent alone still links the trace.
    }
  }
  return sc;
}

/**
 * The producer's context as a parent for a consumer span: the envelope's fields first (they travel
 * with the message through every broker and redrive), the transport headers otherwise. The root
 * context when neither holds a valid traceparent, so a consumer span never inherits whatever
 * context the transport's callback happened to run in.
 */
export function producerContext(
  envelope: { readonly traceparent?: string; readonly tracestate?: string } | undefined,
  headers: Readonly<Record<string, string>>,
): Context {
  const sc =
    envelope?.traceparent !== undefined
      ? parseTraceparent(envelope.traceparent, envelope.tracestate)
      : parseTraceparent(headers[TraceHeader.traceparent], headers[TraceHeader.tracestate]);
  return sc === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, sc);
}

/** The trace and span id to log with a delivery, when its span has a valid context. */
export function traceIdsOf(span: Span | undefined): { traceId: string; spanId: string } | undefined {
  if (span === undefined) return undefined;
  const sc = span.spanContext();
  if (sc === INVALID_SPAN_CONTEXT || !isSpanContextValid(sc)) return undefined;
  return { traceId: sc.traceId, spanId: sc.spanId };
}
