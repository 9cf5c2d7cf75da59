import { describe, expect, it } from 'vitest';
import { DependencyError, InvalidOutgoingMessageError, OutboxConfigSchema, TransportError } from '../../src/index.js';
import { isPermanent } from '../../src/outbox/outbox-dispatcher.js';
import { outboxRetryDelayMs } from '../../src/outbox/outbox-store.js';

describe('outbox dispatch policy', () => {
  it('backs a row off by its attempts: initial × factor^(n − 1), capped', () => {
    const backoff = { initial: 500, factor: 2, max: 60_000 };
    expect([1, 2, 3, 4].map((n) => outboxRetryDelayMs(n, backoff))).toEqual([500, 1_000, 2_000, 4_000]);
    expect(outboxRetryDelayMs(30, backoff)).toBe(60_000);
  });

  it('moves aside only what says it can never succeed; a broker that is down is tried again', () => {
    expect(isPermanent(new InvalidOutgoingMessageError('too large'))).toBe(true);
    expect(isPermanent(new TransportError('unroutable', { retryable: false }))).toBe(true);
    expect(isPermanent(Object.assign(new Error('limit'), { retryable: false }))).toBe(true);
    expect(isPermanent(new TransportError('connection lost'))).toBe(false);
    expect(isPermanent(new DependencyError('down', { dependency: 'broker' }))).toBe(false);
    expect(isPermanent(new Error('ECONNRESET'))).toBe(false);
    expect(isPermanent(undefined)).toBe(false);
  });

  it('has defaults whose lease outlives the dispatch timeout, and refuses one that does not', () => {
    const defaults = OutboxConfigSchema.parse({});
    expect(defaults.leaseMs).toBeGreaterThan(defaults.dispatchTimeoutMs);
    expect(defaults.table).toBe('sluice_outbox');
    expect(defaults.retentionMs).toBe(7 * 24 * 3_600_000);
    const bad = OutboxConfigSchema.safeParse({ leaseMs: 1_000, dispatchTimeoutMs: 1_000 });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['leaseMs']);
  });
});
