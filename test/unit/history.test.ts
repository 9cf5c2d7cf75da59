import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, createBus, memoryInbox } from '../../src/index.js';
import { describeEntry, redriveHint } from '../../src/history/describe-entry.js';

const silent = pino({ level: 'silent' });
const issuesOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  }
  throw new Error('expected a ConfigError');
};

describe('history settings', () => {
  it('fail at start-up naming the field', () => {
    expect(issuesOf(() => createBus({ history: { table: 'Bad-Name' } }, { logger: silent }))).toEqual([
      expect.stringMatching(/^history\.table: a lower-case SQL identifier/),
    ]);
    expect(issuesOf(() => createBus({ history: { retentionMs: 10 } }, { logger: silent }))).toEqual([
      expect.stringMatching(/^history\.retentionMs: /),
    ]);
    expect(issuesOf(() => createBus({ history: { data: { maxBytes: 0 } } }, { logger: silent }))).toEqual([
      expect.stringMatching(/^history\.data\.maxBytes: /),
    ]);
    expect(issuesOf(() => createBus({ history: { enable: true } as never }, { logger: silent }))).toEqual([
      expect.stringMatching(/^history\.enable: unknown field; allowed: enabled, table, /),
    ]);
    const bus = createBus({ shutdown: { signals: [] } }, { inbox: memoryInbox(), logger: silent });
    expect(() => bus.endpoint('x', { history: 'yes' as never })).toThrow(/endpoints\.x\.history: /);
  });
});

describe('an entry in plain words', () => {
  const base = {
    endpoint: 'orders',
    messageId: 'm-16',
    occurredAt: '2026-11-30T10:00:01Z',
    tombstone: false,
    reason: null,
    detail: null,
    lostTo: null,
    inDeadLetterQueue: false,
  };
  it('says what happened and, for a refusal, what it lost to', () => {
    expect(describeEntry({ ...base, outcome: 'applied' })).toBe('applied — occurred 2026-11-30T10:00:01Z');
    expect(describeEntry({ ...base, outcome: 'applied', tombstone: true })).toBe(
      'applied: deleted the entity — occurred 2026-11-30T10:00:01Z',
    );
    expect(describeEntry({ ...base, outcome: 'duplicate' })).toBe(
      'skipped: duplicate — message m-16 was processed on orders before',
    );
    const m17 = { messageId: 'm-17', occurredAt: '2026-11-30T10:00:03Z', tombstone: false };
    expect(describeEntry({ ...base, outcome: 'stale', lostTo: m17 })).toBe(
      'skipped: stale — occurred 2026-11-30T10:00:01Z, key already at 2026-11-30T10:00:03Z from message m-17',
    );
    expect(describeEntry({ ...base, outcome: 'stale', lostTo: { ...m17, tombstone: true } })).toBe(
      'skipped: stale — occurred 2026-11-30T10:00:01Z, key already at 2026-11-30T10:00:03Z from message m-17 (a deletion)',
    );
    expect(describeEntry({ ...base, outcome: 'tombstoned', lostTo: { ...m17, tombstone: true } })).toBe(
      'skipped: tombstoned — occurred 2026-11-30T10:00:01Z, key deleted at 2026-11-30T10:00:03Z by message m-17',
    );
    expect(
      describeEntry({
        ...base,
        outcome: 'dead-lettered',
        reason: 'schema-violation',
        detail: 'data.total: expected number',
        inDeadLetterQueue: true,
      }),
    ).toBe('dead-lettered: schema-violation — data.total: expected number (still in the dead-letter queue)');
    expect(redriveHint('m-21', 'schema-violation')).toBe(
      'm-21 is dead-lettered: schema-violation; redrive it to continue',
    );
  });
});
