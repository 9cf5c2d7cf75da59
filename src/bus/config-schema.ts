import { z } from 'zod';
import { DEFAULT_RETRY, RetryConfigSchema } from '../retry/retry-config.js';
import { DEFAULT_DEPENDENCY_BACKOFF, DependencyBackoffSchema } from '../retry/dependency-failure.js';
import { DEFAULT_RETRY_LATER, RetryLaterLimitsSchema } from '../retry/retry-later.js';
import { DEFAULT_HEALTH, HealthConfigSchema } from '../health/health-config.js';
import { DEFAULT_KILL_SWITCH, KillSwitchConfigSchema } from '../killswitch/kill-switch-config.js';
import { DEFAULT_ORDERING, OrderingConfigSchema } from '../ordering/ordering-config.js';
import { ConsumerRestartConfigSchema, DEFAULT_CONSUMER_RESTART } from './consumer-restart-config.js';
import { OutboxConfigSchema } from '../outbox/outbox-store.js';
import { DEFAULT_HISTORY, HistoryConfigSchema } from '../history/history-config.js';

/** Per-endpoint settings; every field has a default, so `{}` is a valid endpoint. */
export const EndpointConfigSchema = z.strictObject({
  /** The broker address (queue, subscription, topic); defaults to the endpoint name. */
  address: z.string().min(1).max(255).optional(),
  /** Messages handled at once. */
  concurrency: z.number().int().min(1).max(10_000).default(1),
  /** Unsettled deliveries the broker may hand out; defaults to 2 × concurrency. */
  prefetch: z.number().int().min(1).max(65_535).optional(),
  /** `key`: messages with the same envelope key (subject) run one after another. */
  orderBy: z.enum(['none', 'key']).default('none'),
  /** Larger bodies are dead-lettered as `oversized` without being parsed. */
  maxBodyBytes: z
    .number()
    .int()
    .min(64)
    .max(256 * 1024 * 1024)
    .default(1024 * 1024),
  /**
   * A message whose type no handler takes: dead-letter it, move it to the skipped queue
   * (`skippedAddress`), or complete it with a warning.
   */
  unknownTypes: z.enum(['deadLetter', 'skippedQueue', 'ignore']).default('deadLetter'),
  /** Where `unknownTypes: skippedQueue` moves messages; defaults to `<address>.skipped`. */
  skippedAddress: z.string().min(1).max(255).optional(),
  /**
   * When set, a message dead-lettered for bad input also yields a `sluice.message-rejected` notice
   * sent to this address, so the producing team learns.
   */
  rejectionAddress: z.string().min(1).max(255).optional(),
  retry: RetryConfigSchema.default(DEFAULT_RETRY),
  /** Retry waits up to this are spent in process; longer ones release the message with a delay. */
  inProcessRetryMaxDelayMs: z.number().int().min(0).max(60_000).default(5_000),
  /**
   * How long a message released for a dependency failure stays away: `initial × factor^(n − 1)`
   * for its n-th dependency failure, capped at `max` (drawn from the upper half, spreading them).
   */
  dependencyBackoffMs: DependencyBackoffSchema.default(DEFAULT_DEPENDENCY_BACKOFF),
  /** `ctx.retryLater()`: its shortest delay and the attempt from which it dead-letters instead. */
  retryLater: RetryLaterLimitsSchema.default(DEFAULT_RETRY_LATER),
  /** Pauses the consumer when final outcomes keep failing (see docs/kill-switch.md). */
  killSwitch: KillSwitchConfigSchema.default(DEFAULT_KILL_SWITCH),
  /** Run handlers through the bus's inbox (when it has one). Off: at-least-once effects. */
  inbox: z.boolean().default(true),
  /**
   * With an inbox: what handlers publish and send is written to the outbox in their transaction and
   * dispatched after the commit (see docs/outbox.md). `false`: it goes to the broker at once, during
   * the handler, even if the transaction then rolls back.
   */
  outbox: z.boolean().default(true),
  /**
   * Group commit: messages reaching the inbox at about the same time share one transaction (one
   * multi-row claim, one commit). Off by default.
   */
  groupCommit: z
    .strictObject({
      maxMessages: z.number().int().min(2).max(1_000).default(100),
      maxWaitMs: z.number().int().min(0).max(1_000).default(0),
      isolation: z.enum(['rerun', 'savepoint']).default('rerun'),
    })
    .optional(),
  /** The ordering guard: stale events and tombstones per key (see docs/ordering-and-tombstones.md). */
  ordering: OrderingConfigSchema.default(DEFAULT_ORDERING),
  /** Keep the history of each key (docs/explain.md); default: `history.enabled` (off), with an inbox only. */
  history: z.boolean().optional(),
  /** Re-creating a consumer that stopped on its own (broker cancel, crashed group member): backoff. */
  consumerRestart: ConsumerRestartConfigSchema.default(DEFAULT_CONSUMER_RESTART),
});
export type EndpointConfig = z.infer<typeof EndpointConfigSchema>;
export type EndpointConfigInput = z.input<typeof EndpointConfigSchema>;

export const LogLevelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** The whole bus configuration. Parsed once at `createBus`; an error names the field. */
export const BusConfigSchema = z.strictObject({
  /** Names this service: the CloudEvents `source` of what it publishes, and in logs. */
  service: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits and . _ - (at most 128)')
    .default('sluice'),
  /** Which broker; the rest of the object is checked by that transport's own schema. */
  transport: z.looseObject({ kind: z.string().min(1) }).default({ kind: 'memory' }),
  logging: z
    .strictObject({
      level: LogLevelSchema.default('info'),
    })
    .default({ level: 'info' }),
  shutdown: z
    .strictObject({
      /** How long in-flight handlers may run after a stop was asked for. */
      timeoutMs: z.number().int().min(0).max(600_000).default(30_000),
      /** Signals that start a graceful stop; `[]` leaves signals to the application. */
      signals: z.array(z.enum(['SIGTERM', 'SIGINT', 'SIGHUP'])).default(['SIGTERM', 'SIGINT']),
    })
    .default({ timeoutMs: 30_000, signals: ['SIGTERM', 'SIGINT'] }),
  /** The inbox store's settings; its `kind` must match the store given to `createBus`. */
  inbox: z.looseObject({ kind: z.string().min(1) }).optional(),
  /** The transactional outbox, in the inbox store's database (see docs/outbox.md). */
  outbox: OutboxConfigSchema.prefault({}),
  /** The history of each key beside the inbox, for `bus.explain` (docs/explain.md). */
  history: HistoryConfigSchema.default(DEFAULT_HISTORY),
  /** Per-endpoint settings by endpoint name; they override options given in code. */
  // Kept as given (validated by createBus against EndpointConfigSchema): applying defaults here
  // would overwrite the options given in code for every field the file leaves out.
  endpoints: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  /** The health HTTP server: liveness, readiness, endpoint view, kill switch control. */
  health: HealthConfigSchema.default(DEFAULT_HEALTH),
  /**
   * Signs the retry state Sluice writes into message headers (`sluice-attempts`,
   * `sluice-first-failure-at`), so that a producer cannot set it (e.g. switch retries off with
   * `sluice-attempts: 99`). A secret, never logged; give every instance of the service the same one.
   * Without it the key is derived from `service`: that stops producers that set or copy the headers,
   * not one that knows the service name and the scheme. See docs/retries-and-dead-letters.md.
   */
  retrySigningKey: z.string().min(16, 'at least 16 characters').max(1024).optional(),
});
export type BusConfig = z.infer<typeof BusConfigSchema>;
export type BusConfigInput = z.input<typeof BusConfigSchema>;
