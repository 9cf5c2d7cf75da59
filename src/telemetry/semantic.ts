/*
 * Every OpenTelemetry name Sluice emits: span names, attribute keys, event names, metric names and
 * units. OpenTelemetry's semantic conventions (messaging, CloudEvents, error) where one exists,
 * `sluice.*` otherwise. `docs/observability.md` lists them; change both together.
 */

/** The instrumentation scope: `trace.getTracer(SCOPE_NAME, SCOPE_VERSION)`. Kept equal to package.json's version (a unit test checks). */
export const SCOPE_NAME = 'sluice';
export const SCOPE_VERSION = '0.1.0';

/** Span and metric attribute keys. */
export const Attr = {
  // Messaging semantic conventions (https://opentelemetry.io/docs/specs/semconv/messaging/).
  /** The transport's `kind`: `memory`, `kafka`, `rabbitmq`, `servicebus`. */
  messagingSystem: 'messaging.system',
  /** Consumer: the endpoint's address. Producer: the address sent to, or the message type published. */
  destinationName: 'messaging.destination.name',
  /** `process` (consumer), `send` (producer). */
  operationType: 'messaging.operation.type',
  /** `process`, `publish`, `send`. */
  operationName: 'messaging.operation.name',
  /** The endpoint name (the consumer group of the endpoint's address). */
  consumerGroup: 'messaging.consumer.group.name',
  messageId: 'messaging.message.id',
  /** The envelope's correlation id. */
  conversationId: 'messaging.message.conversation_id',
  bodySize: 'messaging.message.body.size',
  // CloudEvents semantic conventions.
  eventType: 'cloudevents.event_type',
  eventSource: 'cloudevents.event_source',
  eventSubject: 'cloudevents.event_subject',
  // General.
  errorType: 'error.type',
  // Sluice's own.
  /** The broker's delivery count (1 on first delivery). */
  deliveryCount: 'sluice.delivery_count',
  /** The handler attempt, counted across redeliveries (0: the handler never ran). */
  attempt: 'sluice.attempt',
  /** The final outcome's kind: `completed`, `skipped`, `retry`, `deadLetter`, `released`. */
  outcome: 'sluice.outcome',
  /** The skip, dead-letter or release reason. */
  outcomeReason: 'sluice.outcome.reason',
  /** A retry's delay before the next attempt, in milliseconds. */
  retryDelayMs: 'sluice.retry.delay_ms',
  /** Where a retry happens: `in-process` (waited under the lock) or `redelivery` (released to the broker). */
  retryMode: 'sluice.retry.mode',
  /** The settlement the broker refused (lock lost): the span ends with it set to `true`. */
  settleFailed: 'sluice.settle.failed',
  killSwitchState: 'sluice.kill_switch.state',
} as const;

export const OperationType = { process: 'process', send: 'send' } as const;

/** Span event names on the consumer span. Failed attempts also get the standard `exception` event. */
export const SpanEvent = {
  retry: 'sluice.retry',
  skipped: 'sluice.skipped',
  deadLettered: 'sluice.dead_lettered',
  released: 'sluice.released',
} as const;

/** Metric instruments: name, unit, description. */
export const Metric = {
  processDuration: {
    name: 'messaging.process.duration',
    unit: 's',
    description: 'From receiving a delivery to settling it.',
  },
  consumedMessages: {
    name: 'messaging.client.consumed.messages',
    unit: '{message}',
    description: 'Deliveries settled by a consumer endpoint.',
  },
  sentMessages: {
    name: 'messaging.client.sent.messages',
    unit: '{message}',
    description: 'Messages published or sent (error.type set when the broker refused).',
  },
  outcomes: {
    name: 'sluice.message.outcomes',
    unit: '{message}',
    description: 'Final outcomes of deliveries, by sluice.outcome and sluice.outcome.reason.',
  },
  settleFailures: {
    name: 'sluice.message.settle_failures',
    unit: '{message}',
    description: 'Settlements the broker refused (lock lost); the broker redelivers.',
  },
  inFlight: {
    name: 'sluice.consumer.in_flight',
    unit: '{message}',
    description: 'Deliveries received and not yet settled, per endpoint.',
  },
  outboxDepth: {
    name: 'sluice.outbox.depth',
    unit: '{message}',
    description: 'Outbox rows waiting to be dispatched (not moved aside), as last read.',
  },
  outboxOldestAge: {
    name: 'sluice.outbox.oldest_age',
    unit: 'ms',
    description: 'How long the oldest waiting outbox row has waited, as last read.',
  },
  outboxMovedAside: {
    name: 'sluice.outbox.moved_aside',
    unit: '{message}',
    description: 'Outbox rows moved aside (refused for good by the broker), as last read.',
  },
  killSwitchState: {
    name: 'sluice.kill_switch.state',
    unit: '1',
    description: '1 for the kill switch state an endpoint is in, 0 for the others.',
  },
} as const;

/** Bucket boundaries for the duration histogram, from the messaging conventions (seconds). */
export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
