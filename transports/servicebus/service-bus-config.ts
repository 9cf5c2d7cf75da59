import { z } from 'zod';

/** Queue and topic names: letters, digits, `.` `-` `_` and `/` (Service Bus rules), at most 260. */
const EntityNameSchema = z
  .string()
  .min(1)
  .max(260)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._\-/]*$/,
    'letters, digits and . _ - / (at most 260), starting with a letter or digit',
  );

/**
 * Configuration of the Azure Service Bus transport (`transport` in the bus config). Only
 * `connectionString` is required. See docs/transports/servicebus.md for the entity mapping.
 */
export const ServiceBusTransportConfigSchema = z.strictObject({
  kind: z.literal('servicebus'),
  /**
   * `Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=..;SharedAccessKey=..`.
   * A secret: never logged.
   */
  connectionString: z
    .string()
    .refine(
      (value) => /(^|;)\s*Endpoint\s*=\s*sb:\/\/[^;]+/i.test(value),
      'must be a Service Bus connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...)',
    ),
  /**
   * `verify` (default): `declare` checks that the endpoint's queue, the topics of its message types
   * and its subscriptions exist, and fails naming the missing entity (create them with your
   * infrastructure code). `create`: `declare` creates what is missing; needs Manage rights.
   */
  entities: z.enum(['verify', 'create']).default('verify'),
  /** Prepended to the topic name of every message type (e.g. `prod.`). */
  topicPrefix: z
    .string()
    .max(100)
    .regex(/^[A-Za-z0-9._\-/]*$/, 'letters, digits and . _ - /')
    .default(''),
  /** Topic per message type, overriding `topicPrefix + type` (`{ 'orders.order-placed.v1': 'orders' }`). */
  topics: z.record(z.string(), EntityNameSchema).default({}),
  /**
   * Per-key order through sessions: endpoint queues require sessions, a message's session id is its
   * envelope key (its message id when it has none), and each session is processed by one consumer
   * at a time. `capabilities.ordering` becomes `session`.
   */
  sessions: z.boolean().default(false),
  /** With sessions: how many sessions one consumer holds at once. */
  maxConcurrentSessions: z.number().int().min(1).max(1000).default(8),
  /** With sessions: a held session with nothing in flight is let go after this long without a message. */
  sessionIdleTimeoutMs: z.number().int().min(50).max(600_000).default(2_000),
  /**
   * The SDK renews the lock of a delivery (and of a session) while its handler runs, for at most this
   * long; 0 turns automatic renewal off. Keep it above the longest handler run.
   */
  maxAutoLockRenewalDurationMs: z.number().int().min(0).max(86_400_000).default(300_000),
  /** Timeout of one broker operation (send, settle, management request), and the SDK's retry count. */
  operationTimeoutMs: z.number().int().min(1_000).max(600_000).default(60_000),
  maxRetries: z.number().int().min(0).max(20).default(3),
  /** Properties of queues created with `entities: 'create'`. */
  createdQueues: z
    .strictObject({
      /** Peek-lock duration (the service accepts 5 s to 5 min). */
      lockDurationMs: z.number().int().min(100).max(300_000).default(60_000),
      /** Deliveries before the broker dead-letters with `MaxDeliveryCountExceeded`. */
      maxDeliveryCount: z.number().int().min(1).max(2_000).default(10),
    })
    .default({ lockDurationMs: 60_000, maxDeliveryCount: 10 }),
});
export type ServiceBusTransportConfig = z.infer<typeof ServiceBusTransportConfigSchema>;
export type ServiceBusTransportConfigInput = z.input<typeof ServiceBusTransportConfigSchema>;
