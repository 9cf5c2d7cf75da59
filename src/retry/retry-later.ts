import { z } from 'zod';

/** Limits of `ctx.retryLater()`: the shortest delay it waits and the most attempts it may make. */
export const RetryLaterLimitsSchema = z.strictObject({
  /**
   * A shorter (or zero) delay is raised to this. `0` takes the handler's delay as it is: a broker
   * that counts redeliveries itself then sees `retryLater(0)` as a plain redelivery (Service Bus
   * dead-letters past its max delivery count); never on the memory transport, where a zero delay
   * hands the message straight back and the handler runs in a loop that starves timers and signals.
   */
  minDelayMs: z.number().int().min(0).max(3_600_000).default(1_000),
  /** On this attempt (the global count, failures included) a further `retryLater` dead-letters the message (`retries-exhausted`). */
  maxAttempts: z.number().int().min(1).max(1_000_000).default(100),
});
export type RetryLaterLimits = z.infer<typeof RetryLaterLimitsSchema>;

export const DEFAULT_RETRY_LATER: RetryLaterLimits = { minDelayMs: 1_000, maxAttempts: 100 };
