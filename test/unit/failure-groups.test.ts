import { describe, expect, it } from 'vitest';
import { matchesFilter } from '../../src/dead-letters/dead-letter-filter.js';
import { detailOf } from '../../src/dead-letters/dead-letter-view.js';
import { failureGroupOf, normaliseFailureText } from '../../src/dead-letters/failure-group.js';
import { createFault } from '../../src/errors/fault.js';
import type { DeadLetteredMessage } from '../../src/transport-core/index.js';

function dead(error: Error | undefined, extra: Partial<DeadLetteredMessage> = {}, at = '2026-01-01T10:00:00.000Z') {
  const fault = createFault({
    reason: error ? 'retries-exhausted' : 'schema-violation',
    description: error ? `retries exhausted: ${error.message}` : 'data.total: expected number, received string',
    ...(error ? { error } : {}),
    attempts: 3,
    endpoint: 'billing',
    originalAddress: 'billing',
    now: new Date(at),
    messageType: 'billing.charge.v1',
  });
  return { deadLetterId: 'd', messageId: 'm', body: Buffer.from('{}'), headers: {}, fault, ...extra };
}

describe('failure groups', () => {
  it('folds numbers, ids, times and quoted values, and keeps digits inside words', () => {
    expect(normaliseFailureText('order 4711 not found')).toBe('order <n> not found');
    expect(normaliseFailureText('order "A-17" for customer \'bob\' failed')).toBe(
      'order "…" for customer \'…\' failed',
    );
    expect(normaliseFailureText('lock 5f2b1c9e-0d7a-4a43-9a1e-2b9c4f0d1e2a held since 2026-01-01T10:00:00.123Z')).toBe(
      'lock <uuid> held since <time>',
    );
    expect(normaliseFailureText('commit 9fceb02d0ae598e95dc970b74767f19372d61af8 missing')).toBe(
      'commit <hex> missing',
    );
    expect(normaliseFailureText('utf8 decoder v2 failed -3 times')).toBe('utf8 decoder v2 failed <n> times');
    expect(normaliseFailureText('  many\n\n spaces ')).toBe('many spaces');
  });

  it('puts the same failure with other values in one group, and another error type in another', () => {
    const a = failureGroupOf(dead(new TypeError('cannot read "total" of order 1')));
    const b = failureGroupOf(dead(new TypeError('cannot read "total" of order 2')));
    const c = failureGroupOf(dead(new RangeError('cannot read "total" of order 2')));
    expect(a).toEqual(b);
    expect(a.id).toMatch(/^[0-9a-f]{12}$/);
    expect(c.id).not.toBe(a.id);
    expect(failureGroupOf(dead(undefined))).toMatchObject({ reason: 'schema-violation', errorType: '' });
  });

  it('filters by reason, error type, message type, group and time', () => {
    const d = dead(new TypeError('boom 1'), {}, '2026-01-01T10:00:00.000Z');
    expect(matchesFilter(d, {})).toBe(true);
    expect(
      matchesFilter(d, { reason: 'retries-exhausted', errorType: 'TypeError', messageType: 'billing.charge.v1' }),
    ).toBe(true);
    expect(matchesFilter(d, { errorType: 'RangeError' })).toBe(false);
    expect(matchesFilter(d, { group: failureGroupOf(d).id })).toBe(true);
    expect(matchesFilter(d, { from: '2026-01-01T10:00:00Z', to: '2026-01-01T11:00:00+01:00' })).toBe(false);
    expect(matchesFilter(d, { from: '2026-01-01T11:00:00+01:00', to: '2026-01-01T10:00:01Z' })).toBe(true);
  });

  it('shows a body as text when it is UTF-8, as hex when not, and always as base64', () => {
    expect(detailOf(dead(undefined, { body: Buffer.from('<b>héllo</b>') })).body).toEqual({
      size: 13,
      encoding: 'utf8',
      text: '<b>héllo</b>',
      base64: Buffer.from('<b>héllo</b>').toString('base64'),
    });
    expect(detailOf(dead(undefined, { body: Buffer.from([0xff, 0x00, 0x41]) })).body).toMatchObject({
      encoding: 'hex',
      text: 'ff0041',
    });
  });
});
