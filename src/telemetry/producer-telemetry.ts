import {
  type Attributes,
  type Counter,
  context,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { OutgoingMessage } from '../transport-core/transport.js';
import { sluiceMeter, sluiceTracer } from './otel.js';
import { Attr, Metric, OperationType } from './semantic.js';
import { type TraceFields, traceFieldsOf } from './trace-context.js';

/** Distinct (operation, destination) pairs with cached metric attributes; more share one entry. */
const MAX_DESTINATIONS = 1_000;

/**
 * The producer span and the sent-messages counter of `bus.publish`/`bus.send` (and of a handler's
 * `ctx.publish`/`ctx.send`, whose span is then a child of the consumer span). The span's W3C
 * context is handed to the code that builds the message, to go into the envelope and the headers.
 */
export class ProducerTelemetry {
  readonly #tracer: Tracer = sluiceTracer();
  #sent: Counter | undefined;
  readonly #attributes = new Map<string, Attributes>();

  /** @param system the transport's kind, read on first use (the transport exists by then). */
  constructor(private readonly system: () => string) {}

  /**
   * Runs `work` (build the message with the given trace fields, hand it to the broker) inside a
   * producer span named `{operation} {destination}`; returns the message id. Rethrows what `work`
   * throws, after recording it on the span.
   */
  async run(
    operation: 'publish' | 'send',
    destination: string,
    work: (trace: TraceFields | undefined) => Promise<OutgoingMessage>,
  ): Promise<string> {
    const name = `${operation} ${destination}`;
    const span = this.#tracer.startSpan(name, { kind: SpanKind.PRODUCER });
    const recording = span.isRecording();
    const fields = traceFieldsOf(span);
    try {
      const message = await (recording
        ? context.with(trace.setSpan(context.active(), span), work, undefined, fields)
        : work(fields));
      if (recording) {
        span.setAttributes(this.#attributesOf(name, operation, destination));
        span.setAttribute(Attr.messageId, message.messageId);
        span.setAttribute(Attr.eventType, message.messageType);
        span.setAttribute(Attr.bodySize, message.body.length);
        if (message.key !== undefined) span.setAttribute(Attr.eventSubject, message.key);
      }
      this.#counter().add(1, this.#attributesOf(name, operation, destination));
      return message.messageId;
    } catch (error) {
      const errorType = error instanceof Error ? error.name : '_OTHER';
      if (recording) {
        span.setAttributes(this.#attributesOf(name, operation, destination));
        span.recordException(error instanceof Error ? error : { name: errorType, message: String(error) });
        span.setAttribute(Attr.errorType, errorType);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      }
      this.#counter().add(1, { ...this.#attributesOf(name, operation, destination), [Attr.errorType]: errorType });
      throw error;
    } finally {
      span.end();
    }
  }

  #counter(): Counter {
    // Taken on first use, not at construction: a meter taken before the SDK is registered stays a no-op.
    this.#sent ??= sluiceMeter().createCounter(Metric.sentMessages.name, {
      unit: Metric.sentMessages.unit,
      description: Metric.sentMessages.description,
    });
    return this.#sent;
  }

  #attributesOf(key: string, operation: string, destination: string): Attributes {
    let attributes = this.#attributes.get(key);
    if (attributes) return attributes;
    attributes = Object.freeze({
      [Attr.messagingSystem]: this.system(),
      [Attr.destinationName]: destination,
      [Attr.operationType]: OperationType.send,
      [Attr.operationName]: operation,
    });
    if (this.#attributes.size < MAX_DESTINATIONS) this.#attributes.set(key, attributes);
    return attributes;
  }
}
