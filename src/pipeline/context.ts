import type { Span } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { Handler } from '../contracts/message-context.js';
import type { BatchHandler } from '../contracts/batch-context.js';
import type { MessageContract } from '../contracts/define-message.js';
import type { Envelope } from '../envelope/envelope.js';
import type { Clock } from '../internal/clock.js';
import type { Delivery } from '../transport-core/delivery.js';
import type { ErrorMatcher, RetryPolicy } from '../retry/retry-policy.js';
import type { TombstoneHandler } from '../contracts/tombstone-handler.js';
import type { OrderingConfig } from '../ordering/ordering-config.js';
import { traceIdsOf } from '../telemetry/trace-context.js';
import { Admission } from './admission.js';
import type { OutboxMessage } from '../outbox/outbox-store.js';

/** Endpoint facts every stage may read. */
export interface EndpointInfo {
  readonly name: string;
  readonly address: string;
  /** The bus's clock: the time of fault records and policies (a manual clock in tests). */
  readonly clock: Clock;
}

/**
 * The delivery as stages see it: its bytes, headers and lock, without `complete`, `release` and
 * `deadLetter`. Stages decide (they return an {@link Outcome}); only the endpoint settles, and the
 * compiler checks it: no context hands a stage the settling methods.
 */
export type DeliveryView = Omit<Delivery, 'complete' | 'release' | 'deadLetter'>;

/** Before decoding: only the raw delivery is known. */
export interface DeliveryContext {
  readonly delivery: DeliveryView;
  readonly endpoint: EndpointInfo;
  /** When the endpoint received the delivery (epoch ms). */
  readonly receivedAt: number;
  /** Aborts when the endpoint gives up waiting on shutdown. */
  readonly signal: AbortSignal;
  /** Aborts when the endpoint starts stopping: waits between retries end, the message is released. */
  readonly stopping: AbortSignal;
  /** Child logger: endpoint, delivery count, and the message's id, type and key once decoded. */
  readonly log: Logger;
  /** The consumer span, from right after decoding (see `telemetry/trace-stage.ts`); non-recording without an SDK. */
  readonly span?: Span;
}

/** After decoding: the envelope is well-formed, its data not yet checked against a contract. */
export interface DecodedContext extends DeliveryContext {
  readonly envelope: Envelope;
}

/** A registered handler and its per-type policies. */
export interface Route {
  readonly contract: MessageContract;
  readonly handler: Handler<unknown, unknown>;
  readonly retry: RetryPolicy;
  /** Errors that mark a dependency failure besides `DependencyError` (the endpoint's and the handler's). */
  readonly dependencyErrors?: readonly ErrorMatcher[];
  /** Complete (with a warning) instead of dead-lettering. */
  readonly droppable: boolean;
  /** Set for a batch handler: messages are gathered and handled together. */
  readonly batch?: {
    readonly handler: BatchHandler<unknown, unknown>;
    readonly maxMessages: number;
    readonly maxWaitMs: number;
  };
  /** The ordering guard's settings for this type (the endpoint's, with the handler's override). */
  readonly ordering?: OrderingConfig;
  /** Picks the ordering key of a message; default: the envelope key (subject). */
  readonly orderingKey?: (message: unknown, envelope: Envelope) => string | undefined;
  /** Handles tombstones of this type; without it they are skipped or dead-lettered (`tombstones.unhandled`). */
  readonly onTombstone?: TombstoneHandler<unknown>;
}

/** After validation: the data satisfies the route's contract. */
export interface ValidatedContext extends DecodedContext {
  readonly route: Route;
  readonly message: unknown;
}

/** Let through by the kill switch's gate. */
export interface AdmittedContext extends ValidatedContext {
  /**
   * Admitted as a probe while the kill switch tests whether the cause of a trip is gone: the retry
   * stage gives it one attempt (no in-process retries), so that a failed probe costs one attempt.
   */
  readonly probe: boolean;
  /**
   * The kill switch's ticket (≥ 0): the gate's mapper (`gateOutcome`) shows the switch the turn's
   * outcome with it, once, when the pipeline reports it.
   */
  readonly ticket: number;
}

/** While a handler attempt runs: which attempt this is, globally. */
export interface AttemptContext extends AdmittedContext {
  readonly attempt: number;
}

/** Inside the inbox transaction (when the endpoint has an inbox): the handle the handler writes with. */
export interface HandlerContext extends AttemptContext {
  readonly tx: unknown;
  /**
   * Where the handler's publishes and sends go when the endpoint uses the outbox: written to the
   * outbox in `tx` when the handler returns, dispatched after the commit. `undefined`: they go to
   * the broker at once.
   */
  readonly outbox: OutboxMessage[] | undefined;
}

/**
 * The one object behind every context of a delivery. Stages see it through the interfaces above,
 * each proving one more fact; `narrow.ts` is the only code that fills its fields. One object per
 * delivery (rather than one per stage) keeps the hot path's allocations, and so GC, low.
 */
export class DeliveryRun implements HandlerContext {
  envelope!: Envelope;
  route!: Route;
  message: unknown;
  attempt = 0;
  probe = false;
  ticket: number = Admission.unadmitted;
  tx: unknown = undefined;
  outbox: OutboxMessage[] | undefined = undefined;
  span: Span | undefined = undefined;
  /** The key that orders its turn (`delivery-pipeline.ts`): set when it is scheduled. */
  scheduleKey: string | undefined = undefined;
  readonly receivedAt = Date.now();
  #log: Logger | undefined;

  constructor(
    readonly delivery: DeliveryView,
    readonly endpoint: EndpointInfo,
    readonly signal: AbortSignal,
    readonly stopping: AbortSignal,
    private readonly baseLog: Logger,
  ) {}

  /** Created on first use only: most deliveries never log. */
  get log(): Logger {
    if (this.#log) return this.#log;
    const { delivery, envelope } = this;
    this.#log = envelope
      ? this.baseLog.child({
          messageId: envelope.id,
          messageType: envelope.type,
          key: envelope.key,
          correlationId: envelope.correlationId,
          ...traceIdsOf(this.span),
          deliveryCount: delivery.deliveryCount,
        })
      : this.baseLog.child({ deliveryId: delivery.deliveryId, deliveryCount: delivery.deliveryCount });
    return this.#log;
  }

  /** Drops a logger made before the envelope was known, so later lines name the message. */
  resetLog(): void {
    this.#log = undefined;
  }
}
