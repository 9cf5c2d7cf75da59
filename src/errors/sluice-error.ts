import { type ErrorCode, ErrorCodes } from './codes.js';

/**
 * The one error base of Sluice. Classify by `code` or class, never by message text.
 * `retryable` tells the retry stage whether another attempt can succeed.
 */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable;
  }
}

/** Configuration is invalid. Thrown at start-up, before any connection is opened. */
export class ConfigError extends SluiceError {
  /** Every problem found, each as `path: message`. */
  readonly issues: readonly string[];

  constructor(issues: readonly string[]) {
    super(ErrorCodes.configInvalid, `invalid Sluice configuration:\n  - ${issues.join('\n  - ')}`, {
      retryable: false,
    });
    this.issues = issues;
  }
}

/** A contract or handler registration is wrong; thrown when the endpoint is declared. */
export class RegistrationError extends SluiceError {
  constructor(message: string) {
    super(ErrorCodes.registrationInvalid, message, { retryable: false });
  }
}

/**
 * Throw from a handler when retrying cannot help (a business rule rejects the message).
 * The message is dead-lettered at once with reason `permanent-failure`.
 */
export class PermanentError extends SluiceError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.permanent, message, { retryable: false, cause: options.cause });
  }
}

/** The delivery's lock expired or its connection closed before settlement. */
export class LockLostError extends SluiceError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.lockLost, message, { retryable: true, cause: options.cause });
  }
}

/** A second settlement of the same delivery. A bug in a transport or stage, never in user code. */
export class AlreadySettledError extends SluiceError {
  constructor(deliveryId: string) {
    super(ErrorCodes.alreadySettled, `delivery ${deliveryId} is already settled`, { retryable: false });
  }
}

/** A broker operation failed or the transport is not connected. */
export class TransportError extends SluiceError {
  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(ErrorCodes.transport, message, { retryable: options.retryable ?? true, cause: options.cause });
  }
}

/** The bus is not in a state that allows this call. */
export class LifecycleError extends SluiceError {
  constructor(message: string) {
    super(ErrorCodes.lifecycle, message, { retryable: false });
  }
}

/**
 * A message given to publish/send breaks its contract's schema, the envelope rules its consumers
 * enforce, or a limit of the broker (e.g. the message id's length); nothing was sent.
 */
export class InvalidOutgoingMessageError extends SluiceError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.invalidOutgoing, message, { retryable: false, cause: options.cause });
  }
}

/**
 * A dependency of the handler failed: Sluice's own inbox store (the stores throw it for refused,
 * reset or timed-out connections and a database that is shutting down or busy), or a downstream
 * the handler depends on. Throw it from a handler (or mark error types with `dependencyErrors`)
 * when the message is not at fault: the delivery is released back to the broker with a backoff
 * delay, spends no retry attempt, is never dead-lettered, and counts for the kill switch as a
 * dependency failure (see docs/kill-switch.md).
 *
 * Mark only failures that say nothing about the message itself: a message whose own content makes
 * a dependency fail would come back forever and keep the endpoint paused.
 */
export class DependencyError extends SluiceError {
  /** What failed, for logs and the kill switch view: `inbox (postgres)`, `payments-api`, ... */
  readonly dependency: string;

  constructor(message: string, options: { dependency?: string; cause?: unknown } = {}) {
    super(ErrorCodes.dependency, message, { retryable: true, cause: options.cause });
    this.dependency = options.dependency ?? 'dependency';
  }
}

/**
 * The inbox transaction did not commit although the handler returned: a statement in it failed and
 * the handler caught the error and went on (PostgreSQL then answers COMMIT with ROLLBACK), or the
 * transaction sat idle past the store's idle-in-transaction timeout. Nothing of the attempt was
 * kept; it is a failed attempt like any handler error, for the retry policy to judge.
 */
export class TransactionRolledBackError extends SluiceError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.transactionRolledBack, message, { retryable: true, cause: options.cause });
  }
}
