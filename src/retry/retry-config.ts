import { z } from 'zod';
import { type ErrorFilter, exponential, immediate, intervals, noRetry, type RetryPolicy } from './retry-policy.js';

const positiveMs = z
  .number()
  .int()
  .min(1)
  .max(7 * 24 * 3_600_000);

/** Retry as configuration: the serialisable subset of the policies. */
export const RetryConfigSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('none') }),
  z.strictObject({ kind: z.literal('immediate'), retries: z.number().int().min(1).max(100) }),
  z.strictObject({ kind: z.literal('intervals'), delaysMs: z.array(positiveMs).min(1).max(100) }),
  z.strictObject({
    kind: z.literal('exponential'),
    retries: z.number().int().min(1).max(100).default(5),
    initialMs: positiveMs.default(200),
    factor: z.number().min(1).max(10).default(2),
    maxMs: positiveMs.default(60_000),
    jitter: z.number().min(0).max(1).default(0.2),
  }),
]);
export type RetryConfig = z.infer<typeof RetryConfigSchema>;

export const DEFAULT_RETRY: RetryConfig = {
  kind: 'exponential',
  retries: 5,
  initialMs: 200,
  factor: 2,
  maxMs: 60_000,
  jitter: 0.2,
};

/** Turns retry configuration into a policy. */
export function retryPolicyFrom(config: RetryConfig, filter?: ErrorFilter): RetryPolicy {
  switch (config.kind) {
    case 'none':
      return noRetry(filter);
    case 'immediate':
      return immediate(config.retries, filter);
    case 'intervals':
      return intervals(config.delaysMs, filter);
    case 'exponential':
      return exponential(config, filter);
  }
}
