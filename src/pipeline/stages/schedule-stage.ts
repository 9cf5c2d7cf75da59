import type { Envelope } from '../../envelope/envelope.js';
import type { ValidatedContext } from '../context.js';
import type { KeyedLimiter } from '../keyed-limiter.js';
import type { Outcome } from '../outcome.js';
import type { Stage } from '../compose.js';

/** Picks the partition key of a message; `undefined` means no ordering constraint. */
export type PartitionKeyOf = (envelope: Envelope, partitionKey: string | undefined) => string | undefined;

const RELEASED_ON_SHUTDOWN: Outcome = Object.freeze({ kind: 'released', reason: 'shutdown' });

/**
 * Concurrency and per-key order: at most `concurrency` messages run at once; messages with the same
 * key run one after another in arrival order. A message still waiting when the endpoint stops is
 * released untouched.
 */
export function scheduleStage(limiter: KeyedLimiter, keyOf: PartitionKeyOf | undefined): Stage<ValidatedContext> {
  // Not async: this runs for every message. The limiter calls `next` with the context (no closure
  // per message), and a message that starts at once gets `next`'s own result back (no wrapper).
  return (ctx, next) => {
    // Arrived after the endpoint began to stop (a transport whose pause is not instant): hand back.
    if (ctx.stopping.aborted) return RELEASED_ON_SHUTDOWN;
    let key: string | undefined;
    try {
      key = keyOf ? keyOf(ctx.envelope, ctx.delivery.partitionKey) : undefined;
    } catch (error) {
      // User code: the endpoint releases the message and dead-letters it after a few deliveries.
      return Promise.reject(
        new Error(
          `the endpoint's partitionKey function threw: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        ),
      );
    }
    return limiter.runWith(key, next, ctx, RELEASED_ON_SHUTDOWN);
  };
}
