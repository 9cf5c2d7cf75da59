import { isServiceBusError } from '@azure/service-bus';
import { LockLostError, transportFailure } from '../../src/transport-core/index.js';

/**
 * Maps an SDK failure of a lock-bound operation (settle, renew, schedule-then-complete) to Sluice's
 * errors: `MessageLockLost` / `SessionLockLost` become `LockLostError` (the broker redelivers the
 * message); anything else becomes a retryable `TransportError`. Classified by the SDK's `code`,
 * never by message text.
 */
export function settlementError(error: unknown, what: string): Error {
  if (isServiceBusError(error) && (error.code === 'MessageLockLost' || error.code === 'SessionLockLost')) {
    return new LockLostError(`${what}: the ${error.code === 'SessionLockLost' ? 'session ' : ''}lock was lost`, {
      cause: error,
    });
  }
  return transportFailure(what, error);
}
