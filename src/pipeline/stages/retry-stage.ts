import { createFault, type DeadLetterReason } from '../../errors/fault.js';
import type { Clock } from '../../internal/clock.js';
import type { WaitGauge } from '../../internal/wait-gauge.js';
import { DeadLetterSignal, RetryLaterSignal } from '../../retry/control-signals.js';
import { type DependencyBackoff, dependencyDelayMs, dependencyFailureOf } from '../../retry/dependency-failure.js';
import type { RetryLaterLimits } from '../../retry/retry-later.js';
import type { RetryState, RetryStateHeaders } from '../../retry/retry-state.js';
import { SluiceHeader } from '../../transport-core/headers.js';
import { safeError } from '../../telemetry/logger.js';
import { recordRetry } from '../endpoint-telemetry.js';
import type { AdmittedContext, AttemptContext } from '../context.js';
import { isPromise, type MaybePromise } from '../maybe-promise.js';
import { withAttempt } from '../narrow.js';
import type { Outcome } from '../outcome.js';
import type { Stage } from '../compose.js';
import { waitHoldingLock } from '../wait-holding-lock.js';

export interface RetryStageOptions {
  readonly clock: Clock;
  /** Retry delays up to this are waited in process (lock held and renewed); longer ones go through the broker. */
  readonly inProcessMaxDelayMs: number;
  /** Reads (verified) and writes (signed) the attempt count carried across redeliveries. */
  readonly retryState: RetryStateHeaders;
  /** The release delay of a message whose attempt failed for a dependency's sake. */
  readonly dependencyBackoff: DependencyBackoff;
  /** The floor and the attempt cap of `ctx.retryLater()`. */
  readonly retryLater: RetryLaterLimits;
  /** Counts a delivery as waiting (not working) while its retry waits in process. */
  readonly waits?: WaitGauge;
}

/**
 * Runs the rest of the pipeline as attempts. A thrown error is classified:
 * - a dependency failure (`DependencyError`, thrown by the inbox store or the handler, or matching
 *   the route's `dependencyErrors`): released with a backoff delay; the attempt is not spent and the
 *   message is never dead-lettered for it;
 * - anything else by the route's policy: retry now, wait in process (the lock is held and renewed),
 *   release for delayed redelivery (the attempt count travels in the `sluice-attempts` header, signed
 *   so that only Sluice can set it, so the limit is global), or dead-letter with fault details.
 * A probe of the kill switch gets one attempt: its failure is released for its next attempt.
 */
export function retryStage(options: RetryStageOptions): Stage<AdmittedContext, AttemptContext> {
  const { clock, inProcessMaxDelayMs, retryState, dependencyBackoff, retryLater, waits } = options;
  // The first attempt runs without an async frame (this runs for every message, and most first
  // attempts succeed); `failed` takes over from its failure (a rejection or a synchronous throw)
  // with the same loop as before.
  const failed = async (
    ctx: AdmittedContext,
    next: (ctx: AttemptContext) => MaybePromise<Outcome>,
    carried: RetryState,
    firstError: unknown,
  ): Promise<Outcome> => {
    const headers = ctx.delivery.headers;
    const attemptsBefore = carried.attempts;
    let attempt = attemptsBefore + 1;
    let firstFailureAt = carried.firstFailureAt;
    let failure: { error: unknown } | undefined = { error: firstError };

    for (;;) {
      try {
        // The first attempt's failure enters the catch below as if that attempt had run here.
        if (failure) {
          const { error } = failure;
          failure = undefined;
          throw error;
        }
        return await next(withAttempt(ctx, attempt));
      } catch (error) {
        const now = new Date(clock.now());
        // Control signals (ctx.deadLetter, ctx.retryLater) are decisions, never a dependency's failure.
        const signalled = error instanceof DeadLetterSignal || error instanceof RetryLaterSignal;
        const dependency = signalled ? undefined : dependencyFailureOf(error, ctx.route.dependencyErrors);
        if (dependency) {
          // Not the message's fault: this attempt is not spent. Attempts that failed earlier in this
          // delivery (in-process retries of a handler error) are, and travel with the message.
          const count = Number.parseInt(headers[SluiceHeader.dependencyFailures] ?? '0', 10);
          const failures = (Number.isFinite(count) && count > 0 ? count : 0) + 1;
          const spent: Record<string, string> =
            attempt - 1 > attemptsBefore && firstFailureAt
              ? retryState.write({ attempts: attempt - 1, firstFailureAt }, ctx.envelope.id)
              : {};
          return {
            kind: 'released',
            reason: 'dependency',
            delayMs: dependencyDelayMs(failures, dependencyBackoff),
            headers: { ...spent, [SluiceHeader.dependencyFailures]: String(failures) },
            dependency: dependency.dependency,
            error,
          };
        }
        firstFailureAt ??= now;
        const fail = (reason: DeadLetterReason, description: string, cause?: unknown): Outcome => ({
          kind: 'deadLetter',
          fault: createFault({
            reason,
            description,
            error: cause,
            attempts: attempt,
            endpoint: ctx.endpoint.name,
            originalAddress: ctx.delivery.address,
            firstFailureAt,
            now,
            messageId: ctx.envelope.id,
            messageType: ctx.envelope.type,
          }),
        });
        const redeliver = (delayMs: number, cause: unknown): Outcome => ({
          kind: 'retry',
          delayMs,
          attempt,
          error: cause,
          retryLater: cause instanceof RetryLaterSignal,
          headers: retryState.write({ attempts: attempt, firstFailureAt: firstFailureAt ?? now }, ctx.envelope.id),
        });

        if (error instanceof DeadLetterSignal) return fail('handler-dead-lettered', error.description);
        if (error instanceof RetryLaterSignal) {
          if (attempt >= retryLater.maxAttempts) {
            return fail(
              'retries-exhausted',
              `ctx.retryLater() on attempt ${attempt}; the endpoint allows ${retryLater.maxAttempts} (retryLater.maxAttempts)` +
                (error.why ? `; last reason: ${error.why}` : ''),
            );
          }
          // A floor: a zero delay on a broker that hands the message straight back (the memory
          // transport) would run the handler again and again without yielding to timers or signals.
          const asked = Number.isFinite(error.delayMs) ? error.delayMs : 0;
          return redeliver(Math.max(asked, retryLater.minDelayMs), error);
        }

        const decision = ctx.route.retry({ error, attempt, firstFailureAt, now });
        if (decision.action === 'giveUp') {
          const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
          return decision.why === 'permanent'
            ? fail('permanent-failure', `not retryable: ${what}`, error)
            : fail('retries-exhausted', `failed ${attempt} attempt(s); last: ${what}`, error);
        }
        const delayMs = decision.action === 'retryNow' ? 0 : decision.delayMs;
        ctx.log.warn({ err: safeError(error), attempt, retryInMs: delayMs }, 'handler failed; will retry');
        recordRetry(ctx.span, error, attempt, delayMs);
        // A probe gets one attempt; a delay of at least 1 ms puts it behind the messages waiting, so
        // that the next probe tests another message.
        if (ctx.probe) return redeliver(Math.max(1, delayMs), error);
        if (delayMs > inProcessMaxDelayMs || ctx.stopping.aborted) return redeliver(delayMs, error);
        if (delayMs > 0) {
          waits?.enter();
          const waited = await waitHoldingLock(ctx.delivery, delayMs, ctx.stopping, clock).finally(() =>
            waits?.leave(),
          );
          // Stopping: hand the message back now. Lock lost: the broker may already have handed it to
          // another consumer, so running the handler again here could run it twice at once; the
          // release below then fails on the lost lock, and the broker's copy is the one that runs.
          if (waited.result !== 'waited') return redeliver(waited.result === 'stopping' ? 0 : waited.left, error);
        }
        attempt++;
      }
    }
  };
  return (ctx, next) => {
    // A producer's own sluice-attempts is not believed: only a state Sluice signed counts.
    const carried = retryState.read(ctx.delivery.headers, ctx.envelope.id);
    let first: MaybePromise<Outcome>;
    try {
      first = next(withAttempt(ctx, carried.attempts + 1));
    } catch (error) {
      return failed(ctx, next, carried, error);
    }
    // A first attempt that succeeded (or decided) without waiting needs nothing more from this stage.
    return isPromise(first) ? first.then(undefined, (error: unknown) => failed(ctx, next, carried, error)) : first;
  };
}
