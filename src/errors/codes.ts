/**
 * The stable error codes of Sluice. A code never changes meaning once released; `docs/errors.md`
 * lists each one and a test keeps the two in step.
 */
export const ErrorCodes = {
  /** The bus configuration failed validation; the message names the field. */
  configInvalid: 'SLUICE_CONFIG_INVALID',
  /** A message contract or handler registration is invalid (duplicate type, bad name). */
  registrationInvalid: 'SLUICE_REGISTRATION_INVALID',
  /** A handler asked for the message to be dead-lettered without retries. */
  permanent: 'SLUICE_PERMANENT',
  /** A handler asked for the message to be redelivered later. */
  retryLater: 'SLUICE_RETRY_LATER',
  /** The delivery's lock was lost before it was settled; the broker will redeliver it. */
  lockLost: 'SLUICE_LOCK_LOST',
  /** The delivery was already settled; a second settlement was refused. */
  alreadySettled: 'SLUICE_ALREADY_SETTLED',
  /** The transport is not connected, or failed an operation. */
  transport: 'SLUICE_TRANSPORT',
  /** The bus is not in a state that allows the call (not started, stopping). */
  lifecycle: 'SLUICE_LIFECYCLE',
  /** An outgoing message failed its contract's schema; nothing was sent. */
  invalidOutgoing: 'SLUICE_INVALID_OUTGOING',
  /** The handler did not finish before the endpoint stopped waiting for it. */
  aborted: 'SLUICE_ABORTED',
  /**
   * A dependency failed (the inbox store, or a downstream a handler marks as one): not the
   * message's fault. No attempt is spent, nothing is dead-lettered; the kill switch decides.
   */
  dependency: 'SLUICE_DEPENDENCY',
  /** The inbox transaction did not commit although the handler returned: the attempt failed. */
  transactionRolledBack: 'SLUICE_TRANSACTION_ROLLED_BACK',
  /**
   * `sluice/testing`: a test bus did not settle: work still ran when the real-time timeout came,
   * virtual time reached the horizon with work still due, or work waits that nothing will move.
   */
  notSettled: 'SLUICE_NOT_SETTLED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];
