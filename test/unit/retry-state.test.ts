import { describe, expect, it } from 'vitest';
import { retryStateHeaders } from '../../src/retry/retry-state.js';

const first = new Date('2026-11-22T10:00:00.000Z');

describe('retry state headers', () => {
  const state = retryStateHeaders({ key: 'k'.repeat(32), service: 'billing', endpoint: 'charges' });

  it('reads back the state it wrote, for the same message', () => {
    const headers = state.write({ attempts: 3, firstFailureAt: first }, 'm-1');
    expect(headers['sluice-attempts']).toBe('3');
    expect(headers['sluice-retry-signature']).toMatch(/^v1\./);
    expect(state.read(headers, 'm-1')).toEqual({ attempts: 3, firstFailureAt: first });
  });

  it('does not believe an attempt count a producer set without a signature', () => {
    expect(state.read({ 'sluice-attempts': '99' }, 'm-1')).toEqual({ attempts: 0, firstFailureAt: undefined });
    expect(state.read({ 'sluice-attempts': '99', 'sluice-first-failure-at': first.toISOString() }, 'm-1')).toEqual({
      attempts: 0,
      firstFailureAt: undefined,
    });
  });

  it('does not believe a signed state that was changed, or copied to another message or endpoint', () => {
    const headers = state.write({ attempts: 2, firstFailureAt: first }, 'm-1');
    const none = { attempts: 0, firstFailureAt: undefined };
    expect(state.read({ ...headers, 'sluice-attempts': '20' }, 'm-1')).toEqual(none);
    expect(state.read({ ...headers, 'sluice-first-failure-at': '2000-01-01T00:00:00.000Z' }, 'm-1')).toEqual(none);
    expect(state.read(headers, 'm-2')).toEqual(none);
    const otherEndpoint = retryStateHeaders({ key: 'k'.repeat(32), service: 'billing', endpoint: 'refunds' });
    expect(otherEndpoint.read(headers, 'm-1')).toEqual(none);
    const otherKey = retryStateHeaders({ key: 'x'.repeat(32), service: 'billing', endpoint: 'charges' });
    expect(otherKey.read(headers, 'm-1')).toEqual(none);
  });

  it('without a configured key, instances of one service agree and other services do not', () => {
    const a = retryStateHeaders({ key: undefined, service: 'billing', endpoint: 'charges' });
    const b = retryStateHeaders({ key: undefined, service: 'billing', endpoint: 'charges' });
    const other = retryStateHeaders({ key: undefined, service: 'shipping', endpoint: 'charges' });
    const headers = a.write({ attempts: 1, firstFailureAt: first }, 'm-1');
    expect(b.read(headers, 'm-1').attempts).toBe(1);
    expect(other.read(headers, 'm-1').attempts).toBe(0);
  });

  it.each([['0'], ['-1'], ['1.5'], ['abc'], ['1e3'], ['9999999']])('treats attempts "%s" as none', (attempts) => {
    expect(state.read({ 'sluice-attempts': attempts, 'sluice-retry-signature': 'v1.x' }, 'm-1').attempts).toBe(0);
  });
});
