/**
 * Sluice: a consumer-side messaging runtime. The public entry point: re-exports only.
 */
export { createBus, type BusOptions, type EndpointOptions } from './bus/create-bus.js';
export { createBusFromConfig } from './bus/create-bus-from-config.js';
export { Bus, type BusHealth, type BusState, type TransactionScope } from './bus/bus.js';
export type { EndpointBuilder, HandleOptions } from './bus/endpoint-builder.js';
export type { EndpointCounters, EndpointState } from './bus/endpoint.js';
export type { ConsumerState, ConsumerView } from './bus/consumer-supervisor.js';
export {
  ConsumerRestartConfigSchema,
  type ConsumerRestartConfig,
} from './bus/consumer-restart-config.js';
export { loadConfig, type LoadConfigOptions, type LoadedConfig } from './bus/load-config.js';
export {
  BusConfigSchema,
  EndpointConfigSchema,
  type BusConfig,
  type BusConfigInput,
  type EndpointConfig,
  type EndpointConfigInput,
} from './bus/config-schema.js';
export {
  defineMessage,
  type MessageContract,
  type MessageInputOf,
  type MessageOf,
} from './contracts/define-message.js';
export type { Handler, MessageContext, OutgoingOptions } from './contracts/message-context.js';
export type { TombstoneContext, TombstoneHandler } from './contracts/tombstone-handler.js';
export {
  OrderingConfigSchema,
  type OrderingConfig,
  type OrderingConfigInput,
  type OrderingOverride,
} from './ordering/ordering-config.js';
export type { EntityVersion } from './ordering/ordering-policy.js';
export { MessageRejected } from './contracts/message-rejected.js';
export type { Envelope, EnvelopeOptions } from './envelope/envelope.js';
export { CloudEventSchema } from './envelope/envelope.js';
export {
  cloudEventsCodec,
  createEnvelope,
  type DecodeResult,
  type EnvelopeCodec,
} from './envelope/cloudevents-codec.js';
export { checkTimestamp, compareInstants, type Instant } from './envelope/timestamp.js';
export { ErrorCodes, type ErrorCode } from './errors/codes.js';
export {
  AlreadySettledError,
  ConfigError,
  DependencyError,
  InvalidOutgoingMessageError,
  LifecycleError,
  LockLostError,
  PermanentError,
  RegistrationError,
  SluiceError,
  TransactionRolledBackError,
  TransportError,
} from './errors/sluice-error.js';
export {
  BadInputReasons,
  DeadLetterReasons,
  FaultHeader,
  faultFromHeaders,
  type DeadLetterReason,
  type FaultDetails,
} from './errors/fault.js';
export type { Outcome, SkipReason } from './pipeline/outcome.js';
export type {
  InboxCommonConfig,
  InboxDefinition,
  InboxDeps,
  InboxEntry,
  InboxResult,
  InboxRow,
  InboxStore,
  InboxWork,
} from './inbox/inbox-store.js';
export { MemoryInbox, memoryInbox } from './inbox/memory-inbox.js';
export type {
  DeadLetterScan,
  ExplainEntry,
  ExplainOptions,
  Explanation,
  GuardState,
  MessageExplanation,
} from './history/explain.js';
export type { CausedMessage, HistoryOutcome, LostTo } from './history/history-record.js';
export { HistoryConfigSchema, type HistoryConfig } from './history/history-config.js';
export { postgresHistoryDdl } from './history/postgres-history.js';
export { sqliteHistoryDdl } from './history/sqlite-history.js';
export type { Outbox } from './outbox/outbox.js';
export type { OutboxView } from './outbox/outbox-upkeep.js';
export {
  type ClaimOptions,
  type HeldRow,
  type OutboxConfig,
  type OutboxConfigInput,
  OutboxConfigSchema,
  type OutboxMessage,
  type OutboxRow,
  type OutboxStats,
  type OutboxStore,
  type OutboxStoreOptions,
} from './outbox/outbox-store.js';
export type { PartitionKeyOf } from './pipeline/delivery-pipeline.js';
export {
  exponential,
  immediate,
  intervals,
  isRetryable,
  noRetry,
  type ErrorFilter,
  type ErrorMatcher,
  type ExponentialOptions,
  type FailureFacts,
  type RetryDecision,
  type RetryPolicy,
} from './retry/retry-policy.js';
export { RetryConfigSchema, type RetryConfig } from './retry/retry-config.js';
export { DependencyBackoffSchema, type DependencyBackoff } from './retry/dependency-failure.js';
export { RetryLaterLimitsSchema, type RetryLaterLimits } from './retry/retry-later.js';
export { type LoggedError, redactConnectionString, redactSecrets, safeError } from './telemetry/logger.js';
export type {
  BusEventListener,
  BusEventName,
  BusEvents,
  ConsumerChange,
} from './telemetry/events.js';
export type { KillSwitchChange } from './killswitch/kill-switch-events.js';
export {
  KillSwitchConfigSchema,
  type KillSwitchConfig,
  type KillSwitchConfigInput,
} from './killswitch/kill-switch-config.js';
export type { KillSwitchControl, KillSwitchView, LastFailure } from './killswitch/kill-switch.js';
export type { KillSwitchState } from './killswitch/kill-switch-policy.js';
export {
  AdminConfigSchema,
  type AdminConfig,
  HealthConfigSchema,
  type HealthConfig,
  type HealthConfigInput,
} from './health/health-config.js';
export {
  createHealthHandler,
  type HealthHandlerOptions,
  type HealthRequestHandler,
  type HealthSource,
} from './health/health-handler.js';
export type { EndpointSnapshot, HealthSnapshot } from './health/health-snapshot.js';
export { startHealthServer, type HealthServer, type HealthServerOptions } from './health/health-server.js';
export {
  type Access,
  createTokenAuthorizer,
  type TokenAuthorizer,
  type TokenCheck,
  tokenDigest,
} from './health/token-authorizer.js';
export type {
  Consumer,
  ConsumeOptions,
  ConsumerStatus,
  DeadLetteredMessage,
  DeadLetterQueue,
  DeadLetterScanOptions,
  Delivery,
  DeliveryCallback,
  EndpointTopology,
  OutgoingMessage,
  PurgeResult,
  PurgeSelection,
  RedriveResult,
  RedriveSelection,
  ReleaseOptions,
  Transport,
  TransportCapabilities,
  TransportDefinition,
  TransportDeps,
  TransportState,
} from './transport-core/index.js';
export { defineTransport, SluiceHeader } from './transport-core/index.js';
export { type Clock, ManualClock, systemClock } from './internal/clock.js';
export {
  memoryTransport,
  createMemoryBroker,
  MemoryBroker,
  type MemoryTransportConfig,
} from './memory-transport/index.js';
