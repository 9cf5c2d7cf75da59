import { SluiceError } from '../errors/sluice-error.js';

/** What the retry stage knows about a failure. Plain data: policies are pure functions. */
export interface FailureFacts {
  readonly error: unknown;
  /** The attempt that just failed, 1-based and global across redeliveries. */
  readonly attempt: number;
  readonly firstFailureAt: Date;
  readonly now: Date;
}

export type RetryDecision =
  | { readonly action: 'retryNow' }
  | { readonly action: 'retryAfter'; readonly delayMs: number }
  | { readonly action: 'giveUp'; readonly why: 'permanent' | 'exhausted' };

/** Decides what happens after a failed attempt. Must be pure (a `random` may be injected for jitter). */
export type RetryPolicy = (facts: FailureFacts) => RetryDecision;

/** Which errors a policy retries. Classes match with `instanceof`; a predicate sees the error. */
export type ErrorMatcher = (abstract new (...args: never[]) => unknown) | ((error: unknown) => boolean);

export interface ErrorFilter {
  /** Retry only errors matching one of these; others give up at once as permanent. */
  readonly retryOn?: readonly ErrorMatcher[];
  /** Never retry errors matching one of these. Wins over `retryOn`. */
  readonly neverRetryOn?: readonly ErrorMatcher[];
}

/** Whether `error` matches `matcher`: a class by `instanceof`, a predicate by calling it. */
export function matches(error: unknown, matcher: ErrorMatcher): boolean {
  // Classes have a prototype object; arrow-function predicates do not.
  if (typeof matcher === 'function' && matcher.prototype !== undefined && 'constructor' in matcher.prototype) {
    return error instanceof (matcher as abstract new (...args: never[]) => unknown);
  }
  return (matcher as (error: unknown) => boolean)(error);
}

/**
 * Whether an error can succeed on another attempt. A `SluiceError` says so itself
 * (`PermanentError` does not); anything else, including `TypeError`, is retryable: after a bad
 * deploy the kill switch must see the failures, not the dead-letter queue.
 */
export function isRetryable(error: unknown, filter: ErrorFilter = {}): boolean {
  if (error instanceof SluiceError && !error.retryable) return false;
  if (filter.neverRetryOn?.some((m) => matches(error, m))) return false;
  if (filter.retryOn && !filter.retryOn.some((m) => matches(error, m))) return false;
  return true;
}

/** Wraps a schedule with the permanent-error rule and an error filter. */
export function withFilter(schedule: (attempt: number) => number | undefined, filter: ErrorFilter = {}): RetryPolicy {
  return ({ error, attempt }) => {
    if (!isRetryable(error, filter)) return { action: 'giveUp', why: 'permanent' };
    const delayMs = schedule(attempt);
    if (delayMs === undefined) return { action: 'giveUp', why: 'exhausted' };
    return delayMs <= 0 ? { action: 'retryNow' } : { action: 'retryAfter', delayMs };
  };
}

/** No retries: the first failure is final. */
export function noRetry(filter?: ErrorFilter): RetryPolicy {
  return withFilter(() => undefined, filter);
}

/** `retries` immediate retries, then give up. */
export function immediate(retries: number, filter?: ErrorFilter): RetryPolicy {
  return withFilter((attempt) => (attempt <= retries ? 0 : undefined), filter);
}

/** One retry per entry, waiting that many milliseconds first. */
export function intervals(delaysMs: readonly number[], filter?: ErrorFilter): RetryPolicy {
  return withFilter((attempt) => delaysMs[attempt - 1], filter);
}

export interface ExponentialOptions {
  readonly retries: number;
  readonly initialMs: number;
  readonly factor: number;
  readonly maxMs: number;
  /** 0..1: each delay is drawn from [d·(1-jitter), d]. */
  readonly jitter: number;
  /** Injected for deterministic tests; defaults to Math.random. */
  readonly random?: () => number;
}

/** initialMs · factor^(attempt-1), capped at maxMs, with optional downward jitter. */
export function exponential(options: ExponentialOptions, filter?: ErrorFilter): RetryPolicy {
  const random = options.random ?? Math.random;
  return withFilter((attempt) => {
    if (attempt > options.retries) return undefined;
    const base = Math.min(options.maxMs, options.initialMs * options.factor ** (attempt - 1));
    return Math.round(base * (1 - options.jitter * random()));
  }, filter);
}
