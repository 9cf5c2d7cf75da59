import {
  type Attributes,
  type BatchObservableCallback,
  createNoopMeter,
  type Histogram,
  type Meter,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
} from '@opentelemetry/api';
import type { FaultDetails } from '../errors/fault.js';
import type { AttemptContext, DecodedContext, DeliveryContext } from './context.js';
import type { Outcome, OutcomeObserver } from './outcome.js';
import { sluiceMeter, sluiceTracer } from '../telemetry/otel.js';
import { Attr, DURATION_BUCKETS_S, Metric, OperationType, SpanEvent } from '../telemetry/semantic.js';
import { producerContext } from '../telemetry/trace-context.js';
import { redactSecrets } from '../internal/redact.js';

export interface EndpointTelemetryOptions {
  readonly endpoint: string;
  readonly address: string;
  /** The transport's kind (`messaging.system`). */
  readonly system: string;
  /** Defaults to Sluice's tracer from the global provider. */
  readonly tracer?: Tracer;
  /** Defaults to Sluice's meter from the global provider, taken now: create this when the bus starts. */
  readonly meter?: Meter;
}

/**
 * The class of the API's no-op histogram (not exported by the API). A meter taken without an SDK
 * stays a no-op meter (Sluice takes its meter when the bus starts), so its histogram never records.
 * Another copy of the API makes another class: such a histogram is recorded into, as before.
 */
const NOOP_HISTOGRAM_CLASS: unknown = createNoopMeter().createHistogram('sluice.noop').constructor;

/** Distinct `error.type` values kept per endpoint; more are recorded as `_OTHER` (bounded cardinality). */
const MAX_ERROR_TYPES = 64;

/** A running count for one attribute set, reported by an observable counter when the SDK collects. */
interface Tally {
  readonly attributes: Attributes;
  count: number;
}

/**
 * The consumer span and the metrics of one endpoint. Built once when the endpoint starts; the
 * endpoint calls {@link done} (and {@link settleFailed}) once per delivery after settling, the
 * trace stage calls {@link start} after decoding.
 *
 * Cost without an SDK: spans are the API's non-recording spans and attributes are only built when
 * `span.isRecording()`; metric attributes are built once per endpoint and outcome, never per message.
 * Counters are observable: a delivery adds 1 to a plain number, and the SDK reads the totals when it
 * collects (a synchronous counter would hash the attribute set on every message). Only the duration
 * histogram is recorded per message. The callback stays registered after the bus stops, so a final
 * export (SDK shutdown after `bus.stop()`) still has the totals.
 */
export class EndpointTelemetry implements OutcomeObserver {
  readonly #tracer: Tracer;
  readonly #spanName: string;
  /** Attributes every span and metric point of this endpoint carries. */
  readonly #base: Attributes;
  readonly #duration: Histogram;
  /** The histogram is the API's no-op one (no SDK when the bus started): no clock read per message. */
  readonly #durationIsNoop: boolean;
  readonly #consumed: Tally;
  readonly #settleFailures: Tally;
  readonly #completed: Tally;
  readonly #byOutcome = new Map<string, Map<string, Tally>>();
  readonly #byErrorType = new Map<string, Attributes>();

  constructor(options: EndpointTelemetryOptions) {
    this.#tracer = options.tracer ?? sluiceTracer();
    const meter = options.meter ?? sluiceMeter();
    this.#spanName = `${OperationType.process} ${options.address}`;
    this.#base = Object.freeze({
      [Attr.messagingSystem]: options.system,
      [Attr.destinationName]: options.address,
      [Attr.consumerGroup]: options.endpoint,
      [Attr.operationType]: OperationType.process,
      [Attr.operationName]: OperationType.process,
    });
    this.#consumed = { attributes: this.#base, count: 0 };
    this.#settleFailures = { attributes: this.#base, count: 0 };
    this.#completed = this.#tally('completed', undefined);
    const { processDuration, consumedMessages, outcomes, settleFailures } = Metric;
    this.#duration = meter.createHistogram(processDuration.name, {
      unit: processDuration.unit,
      description: processDuration.description,
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    });
    this.#durationIsNoop = this.#duration.constructor === NOOP_HISTOGRAM_CLASS;
    const consumed = meter.createObservableCounter(consumedMessages.name, {
      unit: consumedMessages.unit,
      description: consumedMessages.description,
    });
    const outcomeCounter = meter.createObservableCounter(outcomes.name, {
      unit: outcomes.unit,
      description: outcomes.description,
    });
    const failures = meter.createObservableCounter(settleFailures.name, {
      unit: settleFailures.unit,
      description: settleFailures.description,
    });
    const observe: BatchObservableCallback = (result) => {
      result.observe(consumed, this.#consumed.count, this.#consumed.attributes);
      if (this.#settleFailures.count > 0) {
        result.observe(failures, this.#settleFailures.count, this.#settleFailures.attributes);
      }
      for (const byReason of this.#byOutcome.values()) {
        for (const tally of byReason.values()) {
          if (tally.count > 0) result.observe(outcomeCounter, tally.count, tally.attributes);
        }
      }
    };
    meter.addBatchObservableCallback(observe, [consumed, outcomeCounter, failures]);
  }

  /**
   * Starts the consumer span of a decoded delivery, back-dated to when it was received, as a child
   * of the producer's span (envelope `traceparent`, else the `traceparent` header), or a root span.
   */
  start(ctx: DecodedContext): Span {
    const parent = producerContext(ctx.envelope, ctx.delivery.headers);
    const span = this.#tracer.startSpan(this.#spanName, { kind: SpanKind.CONSUMER, startTime: ctx.receivedAt }, parent);
    if (span.isRecording()) this.#describe(span, ctx);
    return span;
  }

  /**
   * An outcome observer: ends the delivery's span with its final outcome and counts it, once, after
   * settling. A delivery not settled had its span ended by {@link settleFailed}.
   */
  done(ctx: DeliveryContext, outcome: Outcome | undefined): void {
    if (outcome === undefined) return;
    const span = ctx.span ?? this.#lateSpan(ctx);
    if (span.isRecording()) annotate(span, ctx, outcome);
    span.end();
    this.#consumed.count++;
    let durationAttributes = this.#base;
    switch (outcome.kind) {
      case 'completed':
        this.#completed.count++;
        break;
      case 'retry':
        this.#tally('retry', undefined).count++;
        durationAttributes = this.#errorAttributes(errorTypeOf(outcome.error));
        break;
      case 'deadLetter':
        this.#tally('deadLetter', outcome.fault.reason).count++;
        durationAttributes = this.#errorAttributes(faultErrorType(outcome.fault));
        break;
      default:
        this.#tally(outcome.kind, outcome.reason).count++;
    }
    if (!this.#durationIsNoop) this.#duration.record((Date.now() - ctx.receivedAt) / 1000, durationAttributes);
  }

  /** Ends the span of a delivery whose settlement the broker refused (it comes back) and counts it. */
  settleFailed(ctx: DeliveryContext, outcome: Outcome, error: unknown): void {
    const span = ctx.span ?? this.#lateSpan(ctx);
    if (span.isRecording()) {
      span.setAttribute(Attr.outcome, outcome.kind);
      span.setAttribute(Attr.settleFailed, true);
      recordError(span, error);
    }
    span.end();
    this.#settleFailures.count++;
  }

  /** A span for a delivery that never reached the trace stage (bad input, released before decoding). */
  #lateSpan(ctx: DeliveryContext): Span {
    const envelope = (ctx as Partial<DecodedContext>).envelope;
    const parent = producerContext(envelope, ctx.delivery.headers);
    const span = this.#tracer.startSpan(this.#spanName, { kind: SpanKind.CONSUMER, startTime: ctx.receivedAt }, parent);
    if (span.isRecording()) this.#describe(span, ctx);
    return span;
  }

  #describe(span: Span, ctx: DeliveryContext): void {
    span.setAttributes(this.#base);
    span.setAttribute(Attr.deliveryCount, ctx.delivery.deliveryCount);
    span.setAttribute(Attr.bodySize, ctx.delivery.body.length);
    const envelope = (ctx as Partial<DecodedContext>).envelope;
    if (envelope === undefined) return;
    span.setAttribute(Attr.messageId, envelope.id);
    span.setAttribute(Attr.eventType, envelope.type);
    span.setAttribute(Attr.eventSource, envelope.source);
    if (envelope.key !== undefined) span.setAttribute(Attr.eventSubject, envelope.key);
    if (envelope.correlationId !== undefined) span.setAttribute(Attr.conversationId, envelope.correlationId);
  }

  /** The tally of an outcome and reason (reasons are closed enums: the map stays small). */
  #tally(kind: Outcome['kind'], reason: string | undefined): Tally {
    let byReason = this.#byOutcome.get(kind);
    if (!byReason) {
      byReason = new Map();
      this.#byOutcome.set(kind, byReason);
    }
    const key = reason ?? '';
    let tally = byReason.get(key);
    if (!tally) {
      const attributes = Object.freeze(
        reason === undefined
          ? { ...this.#base, [Attr.outcome]: kind }
          : { ...this.#base, [Attr.outcome]: kind, [Attr.outcomeReason]: reason },
      );
      tally = { attributes, count: 0 };
      byReason.set(key, tally);
    }
    return tally;
  }

  #errorAttributes(errorType: string): Attributes {
    let attributes = this.#byErrorType.get(errorType);
    if (attributes) return attributes;
    if (this.#byErrorType.size >= MAX_ERROR_TYPES) return this.#errorAttributes('_OTHER');
    attributes = Object.freeze({ ...this.#base, [Attr.errorType]: errorType });
    this.#byErrorType.set(errorType, attributes);
    return attributes;
  }
}

/**
 * Records a failed attempt that will be retried: the `exception` event and a `sluice.retry` event.
 * Called by the retry stage; a no-op on a non-recording span.
 */
export function recordRetry(span: Span | undefined, error: unknown, attempt: number, delayMs: number): void {
  if (span === undefined || !span.isRecording()) return;
  recordException(span, error);
  span.addEvent(SpanEvent.retry, { [Attr.attempt]: attempt, [Attr.retryDelayMs]: delayMs });
}

/** Sets the outcome attributes, events and status on a recording span. */
function annotate(span: Span, ctx: DeliveryContext, outcome: Outcome): void {
  span.setAttribute(Attr.attempt, (ctx as Partial<AttemptContext>).attempt ?? 0);
  span.setAttribute(Attr.outcome, outcome.kind);
  switch (outcome.kind) {
    case 'completed':
      return;
    case 'skipped':
      span.setAttribute(Attr.outcomeReason, outcome.reason);
      span.addEvent(SpanEvent.skipped, { [Attr.outcomeReason]: outcome.reason });
      return;
    case 'retry':
      // A failure the policy retries was recorded by the retry stage; a handler's retryLater was not.
      if (outcome.retryLater) {
        span.addEvent(SpanEvent.retry, { [Attr.attempt]: outcome.attempt, [Attr.retryDelayMs]: outcome.delayMs });
      }
      span.setAttribute(Attr.retryDelayMs, outcome.delayMs);
      span.setAttribute(Attr.errorType, errorTypeOf(outcome.error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'released for redelivery' });
      return;
    case 'deadLetter': {
      const { fault } = outcome;
      if (fault.errorName !== undefined) {
        span.recordException({ name: fault.errorName, message: fault.errorMessage ?? '', stack: fault.stack });
      }
      span.setAttribute(Attr.outcomeReason, fault.reason);
      span.setAttribute(Attr.errorType, faultErrorType(fault));
      span.addEvent(SpanEvent.deadLettered, { [Attr.outcomeReason]: fault.reason, [Attr.attempt]: fault.attempts });
      span.setStatus({ code: SpanStatusCode.ERROR, message: fault.description });
      return;
    }
    case 'released':
      span.setAttribute(Attr.outcomeReason, outcome.reason);
      span.addEvent(SpanEvent.released, { [Attr.outcomeReason]: outcome.reason });
      return;
  }
}

function recordError(span: Span, error: unknown): void {
  recordException(span, error);
  span.setAttribute(Attr.errorType, errorTypeOf(error));
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: redactSecrets(error instanceof Error ? error.message : String(error)),
  });
}

/** Spans leave the process (to a tracing backend): their texts are redacted like a log line's. */
function recordException(span: Span, error: unknown): void {
  const e = error instanceof Error ? error : undefined;
  span.recordException({
    name: e?.name ?? 'Error',
    message: redactSecrets(e ? e.message : String(error)),
    ...(e?.stack !== undefined ? { stack: redactSecrets(e.stack) } : {}),
  });
}

function errorTypeOf(error: unknown): string {
  return error instanceof Error ? error.name : '_OTHER';
}

/** The failing error's name, or the dead-letter reason for bad input and explicit dead letters. */
function faultErrorType(fault: FaultDetails): string {
  return fault.errorName ?? fault.reason;
}
