import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../src/errors/sluice-error.js';
import {
  exponential,
  immediate,
  intervals,
  isRetryable,
  noRetry,
  type RetryPolicy,
} from '../../src/retry/retry-policy.js';
import { retryPolicyFrom } from '../../src/retry/retry-config.js';

const now = new Date('2026-11-22T00:00:00Z');
const schedule = (policy: RetryPolicy, error: unknown = new Error('x'), max = 10) => {
  const out: string[] = [];
  for (let attempt = 1; attempt <= max; attempt++) {
    const d = policy({ error, attempt, firstFailureAt: now, now });
    out.push(d.action === 'retryAfter' ? String(d.delayMs) : d.action === 'giveUp' ? `giveUp:${d.why}` : 'now');
    if (d.action === 'giveUp') break;
  }
  return out;
};

class DatabaseDown extends Error {}
class BadRequest extends Error {}

describe('retry policies', () => {
  it('none gives up at the first failure', () => {
    expect(schedule(noRetry())).toEqual(['giveUp:exhausted']);
  });

  it('immediate(n) retries n times without waiting', () => {
    expect(schedule(immediate(3))).toEqual(['now', 'now', 'now', 'giveUp:exhausted']);
  });

  it('intervals waits each listed delay once', () => {
    expect(schedule(intervals([100, 1000, 30_000]))).toEqual(['100', '1000', '30000', 'giveUp:exhausted']);
  });

  it('exponential grows by the factor up to the cap', () => {
    const policy = exponential({ retries: 5, initialMs: 100, factor: 3, maxMs: 2000, jitter: 0 });
    expect(schedule(policy)).toEqual(['100', '300', '900', '2000', '2000', 'giveUp:exhausted']);
  });

  it('exponential jitter only shortens, within the jitter fraction', () => {
    const policy = exponential({ retries: 3, initialMs: 1000, factor: 2, maxMs: 10_000, jitter: 0.5, random: () => 1 });
    expect(schedule(policy)).toEqual(['500', '1000', '2000', 'giveUp:exhausted']);
  });

  it('never retries a PermanentError', () => {
    expect(schedule(immediate(5), new PermanentError('no'))).toEqual(['giveUp:permanent']);
  });

  it('keeps a TypeError retryable, so a bad deploy reaches the kill switch rather than the DLQ', () => {
    expect(isRetryable(new TypeError('x is undefined'))).toBe(true);
  });

  it('retryOn retries only the listed classes', () => {
    const policy = immediate(2, { retryOn: [DatabaseDown] });
    expect(schedule(policy, new DatabaseDown())).toEqual(['now', 'now', 'giveUp:exhausted']);
    expect(schedule(policy, new BadRequest())).toEqual(['giveUp:permanent']);
  });

  it('neverRetryOn wins, and takes predicates too', () => {
    const policy = immediate(2, { neverRetryOn: [BadRequest, (e) => e instanceof Error && e.message === 'fatal'] });
    expect(schedule(policy, new BadRequest())).toEqual(['giveUp:permanent']);
    expect(schedule(policy, new Error('fatal'))).toEqual(['giveUp:permanent']);
    expect(schedule(policy, new Error('flaky'))).toEqual(['now', 'now', 'giveUp:exhausted']);
  });

  it('builds the same schedules from configuration', () => {
    expect(schedule(retryPolicyFrom({ kind: 'intervals', delaysMs: [5, 6] }))).toEqual(['5', '6', 'giveUp:exhausted']);
    expect(schedule(retryPolicyFrom({ kind: 'none' }))).toEqual(['giveUp:exhausted']);
  });
});
