/**
 * The broker contract: the only part of `src` that `transports/*` import, and the package's
 * `sluice/transport` entry point for transport authors (docs/testing.md, "Writing a transport").
 */
export type { Delivery, ReleaseOptions } from './delivery.js';
export type {
  Consumer,
  ConsumeOptions,
  ConsumerStatus,
  DeliveryCallback,
  EndpointTopology,
  OutgoingMessage,
  Transport,
  TransportCapabilities,
  TransportState,
} from './transport.js';
export type {
  DeadLetteredMessage,
  DeadLetterQueue,
  DeadLetterScanOptions,
  PurgeResult,
  PurgeSelection,
  RedriveResult,
  RedriveSelection,
} from './dead-letter-queue.js';
export { deadLettered, peekByScan, scanPages } from './dead-letter-queue.js';
export {
  ACKNOWLEDGED,
  type CopyTarget,
  KEPT_FOR_REDELIVERY,
  type SettlementState,
  SettlingDelivery,
} from './settlement.js';
export { ConsumerGate, type ConsumerGateOptions } from './consumer-gate.js';
export { ConnectionState } from './connection-state.js';
export {
  choose,
  type DeadLetterPlan,
  type HeadWalk,
  planSelection,
  walkHead,
} from './redrive-plan.js';
export { deliveryCountOf } from './delivery-count.js';
export { errorText, transportFailure } from './failure.js';
export { defineTransport, type TransportDefinition, type TransportDeps } from './definition.js';
export {
  deadLetterHeaders,
  redriveHeaders,
  SluiceHeader,
  stringHeaders,
  withoutHeaders,
  withoutRetryState,
} from './headers.js';
export {
  AlreadySettledError,
  InvalidOutgoingMessageError,
  LockLostError,
  TransportError,
} from '../errors/sluice-error.js';
export {
  createFault,
  type DeadLetterReason,
  DeadLetterReasons,
  type FaultDetails,
  FaultHeader,
  faultFromHeaders,
  faultToHeaders,
} from '../errors/fault.js';
export { type Clock, systemClock } from '../internal/clock.js';
export { delay, settleWithin, withTimeout } from '../internal/abort.js';
export { createDeferred, type Deferred } from '../internal/deferred.js';
export { Fifo } from '../internal/fifo.js';
export { microtask } from '../internal/microtask.js';
export { Mutex } from '../internal/mutex.js';
export { redactConnectionString, redactSecrets, secretsOf } from '../internal/redact.js';
