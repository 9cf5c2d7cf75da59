import { ErrorCodes } from '../errors/codes.js';
import { SluiceError } from '../errors/sluice-error.js';

/** Why a test harness gave up waiting for its buses to settle. */
export type NotSettledReason = 'timeout' | 'horizon' | 'stuck';

/**
 * Thrown by a test harness's `settled()` and `advance()` when the buses did not come to rest:
 * - `timeout`: `timeoutMs` of real time passed while handlers still worked (one that never returns,
 *   or waits for something the test has not done yet);
 * - `horizon`: virtual time would pass `horizonMs` with work still due (a message that fails
 *   forever on a dependency, a kill switch that keeps tripping);
 * - `stuck`: work is left, yet nothing runs and no timer is due that could move it.
 * `pending` names what was left, one line per item.
 */
export class NotSettledError extends SluiceError {
  readonly reason: NotSettledReason;
  readonly pending: readonly string[];

  constructor(reason: NotSettledReason, summary: string, pending: readonly string[]) {
    super(ErrorCodes.notSettled, `${summary}; still pending:\n  - ${pending.join('\n  - ')}`, { retryable: false });
    this.reason = reason;
    this.pending = pending;
  }
}
