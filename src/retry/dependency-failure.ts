import { z } from 'zod';
import { DependencyError, TransportError } from '../errors/sluice-error.js';
import { type ErrorMatcher, matches } from './retry-policy.js';

/** How deep the `cause` chain is searched for a `DependencyError`. */
const MAX_CAUSE_DEPTH = 8;

/** A failure that is a dependency's, not the message's: what failed and the error that says so. */
export interface DependencyFailure {
  readonly dependency: string;
  readonly error: unknown;
}

/**
 * Whether an error a handler attempt ended with is a dependency failure: a `DependencyError`
 * (thrown by an inbox store or by the handler), a retryable `TransportError` (the broker refused or
 * could not be reached: a `ctx.publish` that goes straight to the broker while it is down), either
 * found in the `cause` chain too (a handler that wrapped it), or an error matching one of the route's
 * `dependencyErrors` matchers. A `TransportError` that is not retryable (a message the broker can
 * never take) stays the handler's failure. Pure.
 */
export function dependencyFailureOf(
  error: unknown,
  dependencyErrors: readonly ErrorMatcher[] | undefined,
): DependencyFailure | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current instanceof Error; depth++) {
    if (current instanceof DependencyError) return { dependency: current.dependency, error };
    if (current instanceof TransportError && current.retryable) return { dependency: 'broker', error };
    current = current.cause;
  }
  if (dependencyErrors?.some((m) => matches(error, m))) {
    return { dependency: error instanceof Error ? error.name : 'dependency', error };
  }
  return undefined;
}

/** The delay before a message released for a dependency failure comes back. */
export const DependencyBackoffSchema = z
  .strictObject({
    /** After the first dependency failure of a message. */
    initial: z.number().int().min(1).max(3_600_000).default(1_000),
    /** Each further dependency failure of the same message multiplies the delay by this. */
    factor: z.number().min(1).max(100).default(2),
    /** The delay never grows beyond this. */
    max: z.number().int().min(1).max(3_600_000).default(60_000),
  })
  .refine((c) => c.max >= c.initial, { message: 'max must be at least initial', path: ['max'] });
export type DependencyBackoff = z.infer<typeof DependencyBackoffSchema>;

export const DEFAULT_DEPENDENCY_BACKOFF: DependencyBackoff = { initial: 1_000, factor: 2, max: 60_000 };

/**
 * The release delay after the `failures`-th dependency failure of one message (1-based):
 * `initial × factor^(failures − 1)`, capped at `max`, drawn from [d/2, d] so that the messages of
 * one outage do not all come back in the same instant. `random` is injected for tests.
 */
export function dependencyDelayMs(
  failures: number,
  backoff: DependencyBackoff,
  random: () => number = Math.random,
): number {
  const d = Math.min(backoff.max, backoff.initial * backoff.factor ** Math.max(0, failures - 1));
  return Math.max(1, Math.round(d * (1 - 0.5 * random())));
}
