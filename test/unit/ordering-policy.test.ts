import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistrationError } from '../../src/index.js';
import { DEFAULT_ORDERING, resolveOrdering } from '../../src/ordering/ordering-config.js';
import { compareVersions, decideOrdering, type EntityVersion } from '../../src/ordering/ordering-policy.js';

const v = (messageId: string, epochMs: number, nanos = 0, tombstone = false): EntityVersion => ({
  occurredAt: new Date(epochMs).toISOString(),
  instant: { epochMs, nanos },
  messageId,
  tombstone,
});
const NOW = 1_000_000;

describe('ordering policy', () => {
  it('applies the first event of a key and a newer one; refuses an older one as stale', () => {
    expect(decideOrdering(v('a', 10), undefined, DEFAULT_ORDERING, NOW)).toEqual({ verdict: 'apply' });
    expect(decideOrdering(v('b', 11), v('a', 10), DEFAULT_ORDERING, NOW)).toEqual({ verdict: 'apply' });
    expect(decideOrdering(v('b', 9), v('a', 10), DEFAULT_ORDERING, NOW)).toEqual({
      verdict: 'stale',
      last: v('a', 10),
    });
  });

  it('compares nanoseconds below the millisecond', () => {
    expect(decideOrdering(v('z', 10, 1), v('a', 10, 2), DEFAULT_ORDERING, NOW).verdict).toBe('stale');
    expect(decideOrdering(v('a', 10, 3), v('z', 10, 2), DEFAULT_ORDERING, NOW).verdict).toBe('apply');
  });

  it('breaks a tie of equal instants by message id: the higher id is the later event; the same id is stale', () => {
    expect(decideOrdering(v('m-b', 10), v('m-a', 10), DEFAULT_ORDERING, NOW).verdict).toBe('apply');
    expect(decideOrdering(v('m-a', 10), v('m-b', 10), DEFAULT_ORDERING, NOW).verdict).toBe('stale');
    expect(decideOrdering(v('m-a', 10), v('m-a', 10), DEFAULT_ORDERING, NOW).verdict).toBe('stale');
  });

  it('treats an event older than a tombstone as stale, and a newer one by the resurrect policy', () => {
    const tomb = v('d', 10, 0, true);
    expect(decideOrdering(v('u', 9), tomb, DEFAULT_ORDERING, NOW).verdict).toBe('stale');
    expect(decideOrdering(v('u', 11), tomb, DEFAULT_ORDERING, NOW).verdict).toBe('apply');
    const reject = {
      ...DEFAULT_ORDERING,
      tombstones: { ...DEFAULT_ORDERING.tombstones, resurrect: 'reject' as const },
    };
    expect(decideOrdering(v('u', 11), tomb, reject, NOW)).toEqual({ verdict: 'tombstoned', last: tomb });
    expect(decideOrdering(v('d2', 12, 0, true), tomb, reject, NOW).verdict).toBe('apply');
  });

  it('rejects or accepts an event stamped beyond the clock skew, by policy', () => {
    const skew = { ...DEFAULT_ORDERING, futureSkewMs: 1_000 };
    expect(decideOrdering(v('f', NOW + 1_000), undefined, { ...skew, futurePolicy: 'reject' }, NOW).verdict).toBe(
      'apply',
    );
    expect(decideOrdering(v('f', NOW + 5_000), undefined, { ...skew, futurePolicy: 'reject' }, NOW)).toEqual({
      verdict: 'future',
      futureByMs: 5_000,
    });
    expect(decideOrdering(v('f', NOW + 5_000), undefined, skew, NOW)).toEqual({ verdict: 'apply', futureByMs: 5_000 });
  });

  it('applies, in any arrival order, exactly the events that are newer than all applied before: the last is the maximum', () => {
    const event = fc.record({
      ms: fc.integer({ min: 0, max: 5 }),
      nanos: fc.integer({ min: 0, max: 2 }),
      id: fc.string({ maxLength: 2 }),
    });
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 20 }), (events) => {
        let last: EntityVersion | undefined;
        for (const e of events) {
          const next = v(e.id, e.ms, e.nanos);
          if (decideOrdering(next, last, DEFAULT_ORDERING, NOW).verdict === 'apply') {
            if (last) expect(compareVersions(next, last)).toBeGreaterThan(0);
            last = next;
          }
        }
        const max = events.map((e) => v(e.id, e.ms, e.nanos)).reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b));
        expect(last && compareVersions(last, max)).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

describe('ordering settings of a handler', () => {
  it('overrides the endpoint settings and keeps the endpoint tombstone retention', () => {
    const endpoint = { ...DEFAULT_ORDERING, enabled: true };
    expect(resolveOrdering(endpoint, false, 'x').enabled).toBe(false);
    const resolved = resolveOrdering(endpoint, { stalePolicy: 'deadLetter', tombstones: { resurrect: 'reject' } }, 'x');
    expect(resolved).toMatchObject({
      enabled: true,
      stalePolicy: 'deadLetter',
      tombstones: { resurrect: 'reject', unhandled: 'skip' },
    });
    expect(resolved.tombstones.retentionMs).toBe(DEFAULT_ORDERING.tombstones.retentionMs);
  });

  it('names the field of an invalid override', () => {
    expect(() => resolveOrdering(DEFAULT_ORDERING, { futureSkewMs: -1 }, 'endpoints.e t.v1')).toThrow(
      RegistrationError,
    );
    expect(() => resolveOrdering(DEFAULT_ORDERING, { futureSkewMs: -1 }, 'endpoints.e t.v1')).toThrow(
      /endpoints\.e t\.v1\.ordering\.futureSkewMs/,
    );
  });
});
