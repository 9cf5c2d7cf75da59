import { z } from 'zod';

const ms = z.number().int().min(1).max(3_600_000);

/**
 * How an endpoint re-creates a consumer that stopped on its own (see `docs/architecture.md`,
 * "Consumer supervision"): waits `initialDelayMs` before the first attempt, doubling after each
 * failed one up to `maxDelayMs` (±20 % jitter), each attempt bounded by `attemptTimeoutMs`.
 */
export const ConsumerRestartConfigSchema = z
  .strictObject({
    /** Wait before the first restart attempt. */
    initialDelayMs: ms.default(1_000),
    /** The wait doubles after each failed attempt, up to this. */
    maxDelayMs: ms.default(30_000),
    /** One attempt (declare the topology again, then consume) that takes longer is given up. */
    attemptTimeoutMs: ms.default(120_000),
  })
  .refine((c) => c.maxDelayMs >= c.initialDelayMs, {
    message: 'maxDelayMs must be at least initialDelayMs',
    path: ['maxDelayMs'],
  });
export type ConsumerRestartConfig = z.infer<typeof ConsumerRestartConfigSchema>;

export const DEFAULT_CONSUMER_RESTART: ConsumerRestartConfig = {
  initialDelayMs: 1_000,
  maxDelayMs: 30_000,
  attemptTimeoutMs: 120_000,
};

/**
 * The wait before restart attempt `attempt` (1 = the first): capped exponential backoff with ±20 %
 * jitter, so that the consumers of one service do not hit a recovering broker in step. Pure:
 * `random` (0 ≤ r < 1) is passed in.
 */
export function consumerRestartDelayMs(attempt: number, config: ConsumerRestartConfig, random: number): number {
  const base = Math.min(config.maxDelayMs, config.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random)));
}
