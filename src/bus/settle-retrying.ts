import { AlreadySettledError, LockLostError } from '../errors/sluice-error.js';
import { delay } from '../internal/abort.js';
import type { Clock } from '../internal/clock.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import type { DeliveryContext } from '../pipeline/context.js';
import type { Outcome, OutcomeObserver } from '../pipeline/outcome.js';
import { type Forward, settle } from '../pipeline/settle.js';
import { isRetryable } from '../retry/retry-policy.js';
import { safeError } from '../telemetry/logger.js';
import type { Delivery } from '../transport-core/delivery.js';
import { unforwardable } from './forward-failure.js';

/** A message whose settlement keeps failing is given back, to come again no sooner than this. */
export const UNEXPECTED_RELEASE_MS = 1_000;
/** Settlement attempts (backoff from SETTLE_RETRY_MS, doubling) before the message is given back. */
const SETTLE_ATTEMPTS = 4;
const SETTLE_RETRY_MS = 250;
/** Passed to {@link settleRetrying} when no settlement was tried yet. */
export const NOT_TRIED: unique symbol = Symbol('not tried');

export interface SettleRetryingOptions {
  /** Sends a copy of a delivery elsewhere (skipped queue). */
  readonly forward: Forward;
  readonly clock: Clock;
  /** Counts a delivery as waiting while a failed settlement pauses before its next try. */
  readonly waits: WaitGauge | undefined;
  /** Told of each failed try (`settleFailed`). */
  readonly observers: readonly OutcomeObserver[];
}

/**
 * Settles once. A settlement the broker refuses because the lock is gone is final (the broker
 * redelivers). Any other failure (a broker hiccup writing a dead-letter or delayed copy, a failed
 * forward) is retried with backoff; if it still fails, the message is given back to the broker.
 * The delivery counts as in flight until then, so no prefetch slot leaks silently. A forward to
 * the skipped queue that is refused (not retryable) or fails on every try is not given back (it
 * would fail again on each delivery, forever): the message is dead-lettered, saying why.
 * `firstTry` is the first try's failure when the caller made that try already, else
 * {@link NOT_TRIED}. Returns the outcome settled with, or `undefined` when the message was not
 * settled by it.
 */
export async function settleRetrying(
  ctx: DeliveryContext,
  delivery: Delivery,
  settling: Outcome,
  firstTry: unknown,
  options: SettleRetryingOptions,
): Promise<Outcome | undefined> {
  let outcome = settling;
  let forwardError: unknown;
  const forward: Forward = (...args) =>
    options.forward(...args).catch((error: unknown) => {
      forwardError = error;
      throw error;
    });
  let failedTry = firstTry;
  for (let attempt = 1; ; attempt++) {
    forwardError = undefined;
    try {
      if (failedTry !== NOT_TRIED) {
        const error = failedTry;
        failedTry = NOT_TRIED;
        throw error;
      }
      await settle(delivery, outcome, forward);
      return outcome;
    } catch (error) {
      for (const observer of options.observers) observer.settleFailed?.(ctx, outcome, error);
      if (error instanceof LockLostError || error instanceof AlreadySettledError) {
        ctx.log.warn(
          { err: safeError(error), outcome: outcome.kind },
          'lock lost before settling; the broker redelivers',
        );
        return undefined;
      }
      if (
        forwardError !== undefined &&
        outcome.kind === 'skipped' &&
        outcome.forwardTo !== undefined &&
        (!isRetryable(forwardError) || attempt >= SETTLE_ATTEMPTS) &&
        !ctx.stopping.aborted
      ) {
        ctx.log.warn(
          { err: safeError(forwardError), forwardTo: outcome.forwardTo, tries: attempt },
          'cannot move the message to the skipped queue; dead-lettering it',
        );
        outcome = unforwardable(ctx, { ...outcome, forwardTo: outcome.forwardTo }, forwardError, attempt);
        attempt = 0;
        continue;
      }
      if (attempt < SETTLE_ATTEMPTS && !ctx.stopping.aborted) {
        const waitMs = SETTLE_RETRY_MS * 2 ** (attempt - 1);
        ctx.log.warn(
          { err: safeError(error), outcome: outcome.kind, retryInMs: waitMs },
          'settling failed; trying again',
        );
        const { waits } = options;
        waits?.enter();
        await delay(waitMs, ctx.stopping, options.clock)
          .catch(() => {})
          .finally(() => waits?.leave());
        continue;
      }
      try {
        // A failed settlement leaves the delivery open (the Delivery contract): when the delayed
        // release fails too, a plain release gives the message back as it is (never held for good).
        await delivery
          .release({ delayMs: UNEXPECTED_RELEASE_MS })
          .catch((delayed: unknown) =>
            delayed instanceof LockLostError ? Promise.reject(delayed) : delivery.release(),
          );
        ctx.log.error(
          { err: safeError(error), outcome: outcome.kind },
          'settling failed; released the message instead',
        );
      } catch (releaseError) {
        ctx.log.error(
          { err: safeError(error), releaseError: safeError(releaseError), outcome: outcome.kind },
          'settling failed and the message could not be given back; the broker redelivers it when its lock or connection goes',
        );
      }
      return undefined;
    }
  }
}
