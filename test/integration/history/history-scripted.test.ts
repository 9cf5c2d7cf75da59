import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  cloudEventsCodec,
  createBus,
  createEnvelope,
  createMemoryBroker,
  memoryInbox,
  memoryTransport,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { EntityUpdated, type Harness, STORE_KINDS, startHarness } from '../ordering/harness.js';

const T = (s: number) => `2026-11-30T10:00:0${s}Z`;

/** A message whose data breaks the contract (value must be a number): dead-lettered, never retried. */
async function sendBad(h: Harness, id: string, key: string, occurredAt: string): Promise<void> {
  const envelope = createEnvelope(EntityUpdated.type, '/test', { value: 'oops' }, { id, key, occurredAt });
  await h.bus.transport.send('entities', {
    messageId: id,
    body: cloudEventsCodec.encode(envelope),
    headers: {},
    contentType: cloudEventsCodec.contentType,
    key,
    messageType: EntityUpdated.type,
  });
}

describe.each(STORE_KINDS)('explain on the %s inbox', (kind) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it("tells a key's life: created, updated out of order, duplicated, deleted, a late update, a bad update", async () => {
    h = await startHarness(kind, {
      endpoint: { concurrency: 1, ordering: { enabled: true, tombstones: { resurrect: 'reject' } } },
    });
    const key = 'order-1042';
    const steps: [string, number, boolean][] = [
      ['m-1', 1, false],
      ['m-3', 3, false],
      ['m-2', 2, false],
      ['m-3', 3, false],
      ['m-4', 4, true],
      ['m-5', 5, false],
    ];
    for (const [id, s, tombstone] of steps) {
      await h.send({ id, key, occurredAt: T(s), tombstone, value: s });
      await h.settled(1);
    }
    await sendBad(h, 'm-6', key, T(6));
    await h.settled(1);
    const bus = h.bus;
    await waitFor(async () => (await bus.explain(key)).entries.length >= 7, { what: 'the dead letter in the history' });

    const explained = await bus.explain(key);
    expect(explained.key).toBe(key);
    expect(explained.guard).toEqual([
      { endpoint: 'entities', history: true, lastApplied: { messageId: 'm-4', occurredAt: T(4), tombstone: true } },
    ]);
    expect(explained.deadLetters).toEqual([{ endpoint: 'entities', scanned: 1, truncated: false }]);
    const m3 = { messageId: 'm-3', occurredAt: T(3), tombstone: false };
    const m4 = { messageId: 'm-4', occurredAt: T(4), tombstone: true };
    expect(
      explained.entries.map((e) => ({
        id: e.messageId,
        outcome: e.outcome,
        reason: e.reason,
        lostTo: e.lostTo,
        summary: e.summary,
        hint: e.hint,
        inDlq: e.inDeadLetterQueue,
        tombstone: e.tombstone,
      })),
    ).toEqual([
      {
        id: 'm-1',
        outcome: 'applied',
        reason: null,
        lostTo: null,
        summary: `applied — occurred ${T(1)}`,
        hint: null,
        inDlq: false,
        tombstone: false,
      },
      {
        id: 'm-3',
        outcome: 'applied',
        reason: null,
        lostTo: null,
        summary: `applied — occurred ${T(3)}`,
        hint: null,
        inDlq: false,
        tombstone: false,
      },
      {
        id: 'm-2',
        outcome: 'stale',
        reason: 'stale',
        lostTo: m3,
        summary: `skipped: stale — occurred ${T(2)}, key already at ${T(3)} from message m-3`,
        hint: null,
        inDlq: false,
        tombstone: false,
      },
      {
        id: 'm-3',
        outcome: 'duplicate',
        reason: null,
        lostTo: null,
        summary: 'skipped: duplicate — message m-3 was processed on entities before',
        hint: null,
        inDlq: false,
        tombstone: false,
      },
      {
        id: 'm-4',
        outcome: 'applied',
        reason: null,
        lostTo: null,
        summary: `applied: deleted the entity — occurred ${T(4)}`,
        hint: null,
        inDlq: false,
        tombstone: true,
      },
      {
        id: 'm-5',
        outcome: 'tombstoned',
        reason: 'tombstoned',
        lostTo: m4,
        summary: `skipped: tombstoned — occurred ${T(5)}, key deleted at ${T(4)} by message m-4`,
        hint: null,
        inDlq: false,
        tombstone: false,
      },
      {
        id: 'm-6',
        outcome: 'dead-lettered',
        reason: 'schema-violation',
        lostTo: null,
        summary: expect.stringMatching(
          /^dead-lettered: schema-violation — .*value.* \(still in the dead-letter queue\)$/,
        ),
        hint: 'm-6 is dead-lettered: schema-violation; redrive it to continue',
        inDlq: true,
        tombstone: false,
      },
    ]);
    expect(explained.entries.every((e) => e.endpoint === 'entities' && e.key === key && e.caused.length === 0)).toBe(
      true,
    );
    // Bad input is refused before any attempt: its fault says 0.
    expect(explained.entries.map((e) => e.attempts)).toEqual([1, 1, 1, 1, 1, 1, 0]);

    // Where one message went; another key's timeline stays its own.
    const m3Path = await bus.explainMessage('m-3');
    expect(m3Path.entries.map((e) => e.outcome)).toEqual(['applied', 'duplicate']);
    expect((await bus.explain('another-key')).entries).toEqual([]);
    // limit keeps the newest, oldest first; endpoint filters.
    expect((await bus.explain(key, { limit: 2 })).entries.map((e) => e.messageId)).toEqual(['m-5', 'm-6']);
    await expect(bus.explain(key, { endpoint: 'nope' })).rejects.toThrow(/no endpoint "nope"/);
  });

  it('keeps no rows for an endpoint whose history is off', async () => {
    h = await startHarness(kind, { endpoint: { history: false } });
    await h.send({ id: 'x-1', key: 'k', occurredAt: T(1), tombstone: false, value: 1 });
    await h.settled(1);
    const explained = await h.bus.explain('k');
    expect(explained.entries).toEqual([]);
    expect(explained.guard[0]?.history).toBe(false);
  });
});

describe('history by default', () => {
  it('is off: a bus with an inbox and no history settings keeps no rows, and says so per endpoint', async () => {
    const bus = createBus(
      { shutdown: { signals: [] } },
      {
        inbox: memoryInbox(),
        transports: [memoryTransport({ broker: createMemoryBroker() })],
        logger: pino({ level: 'silent' }),
      },
    );
    bus.endpoint('entities').handle(EntityUpdated, async () => {});
    await bus.start();
    try {
      await bus.send('entities', EntityUpdated, { value: 1 }, { id: 'd-1', key: 'k' });
      await waitFor(() => bus.health().endpoints.entities?.counters.completed === 1, { what: 'handled' });
      expect(await bus.explain('k')).toEqual({
        key: 'k',
        guard: [{ endpoint: 'entities', history: false, lastApplied: null }],
        entries: [],
        deadLetters: [{ endpoint: 'entities', scanned: 0, truncated: false }],
      });
    } finally {
      await bus.stop();
    }
  });
});
