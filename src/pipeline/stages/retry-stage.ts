import { createFault, type DeadLetterReason } from '../../errors/fault.js';
import { delay } from '../../internal/abort.js';
import type { Clock } from '../../internal/clock.js';
import { DeadLetterSignal, RetryLaterSignal } from '../../retry/control-signals.js';
import type { RetryStateHeaders } from '../../retry/retry-state.js';
import { safeError } from '../../telemetry/logger.js';
import { recordRetry } from '../../telemetry/endpoint-telemetry.js';
import type { AttemptContext, ValidatedContext } from '../context.js';
import { withAttempt } from '../narrow.js';
import type { Outcome } from '../outcome.js';
import type { Stage } from '../compose.js';

export interface RetryStageOptions {
  readonly clock: Clock;
  /** Retry delays up to this are waited in process (lock held and renewed); longer ones go through the broker. */
  readonly inProcessMaxDelayMs: number;
  /** Reads (verified) and writes (signed) the attempt count carried across redeliveries. */
  readonly retryState: RetryStateHeaders;
}

/**
 * Runs the rest of the pipeline as attempts. A thrown error is classified by the route's policy:
 * retry now, wait in process, release for delayed redelivery (the attempt count travels in the
 * `sluice-attempts` header, so the limit is global), or dead-letter with fault details.
 */
export function retryStage(options: RetryStageOptions): Stage<ValidatedContext, AttemptContext> {
  const { clock, inProcessMaxDelayMs, retryState } = options;
  return async (ctx, next) => {
    // A producer's own sluice-attempts is not believed: only a state Sluice signed counts.
    const carried = retryState.read(ctx.delivery.headers, ctx.envelope.id);
    let attempt = carried.attempts + 1;
    let firstFailureAt = carried.firstFailureAt;

    for (;;) {
      try {
        return await next(withAttempt(ctx, attempt));
      } catch (error) {
        const now = new Date(clock.now());
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
          headers: retryState.write({ attempts: attempt, firstFailureAt: firstFailureAt ?? now }, ctx.envelope.id),
        });

        if (error instanceof DeadLetterSignal) return fail('handler-dead-lettered', error.description);
        if (error instanceof RetryLaterSignal) return redeliver(error.delayMs, error);

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
        if (delayMs > inProcessMaxDelayMs || ctx.stopping.aborted) return redeliver(delayMs, error);
        if (delayMs > 0) {
          ctx.delivery.renewLock().catch(() => {});
          try {
            await delay(delayMs, ctx.stopping);
          } catch {
            return redeliver(0, error);
          }
        }
        attempt++;
      }
    }
  };
}
