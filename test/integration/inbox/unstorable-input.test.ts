import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, createMemoryBroker, defineMessage, memoryTransport } from '../../../src/index.js';
import { type PostgresTransaction, postgresInbox } from '../../../src/inbox/postgres/index.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { waitFor } from '../../support/wait-for.js';
import { PG_URL, testPool, uniqueTable } from './stores.js';

/**
 * Bad input the PostgreSQL store cannot hold (issue 19, item 10): rejected at decode as
 * `invalid-envelope`, at once and uncounted, instead of failing the claim on every attempt.
 */
const Note = defineMessage('notes.note.v1', z.object({ text: z.string() }));
const pool = testPool();
const tables: string[] = [];
afterAll(async () => {
  for (const t of tables) await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${t}, ${TEST_SCHEMA}.${t}_versions`);
  await pool.end();
});

const event = (id: string, text: string, extra: Record<string, unknown> = {}) =>
  Buffer.from(
    JSON.stringify({
      specversion: '1.0',
      id,
      source: 'notes-service',
      type: Note.type,
      time: '2026-11-22T10:00:00Z',
      data: { text },
      ...extra,
    }),
  );

async function consumer(storeEnvelope: boolean): Promise<{ bus: Bus<PostgresTransaction>; handled: string[] }> {
  const table = uniqueTable('inbox');
  tables.push(table);
  const bus = createBus(
    {
      shutdown: { signals: [] },
      inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table, storeEnvelope },
    },
    {
      inbox: postgresInbox(),
      transports: [memoryTransport({ broker: createMemoryBroker() })],
      logger: pino({ level: 'silent' }),
    },
  );
  const handled: string[] = [];
  bus
    .endpoint('notes', { retry: { kind: 'immediate', retries: 2 }, killSwitch: { consecutiveFailures: 3 } })
    .handle(Note, async (_note, ctx) => {
      handled.push(ctx.messageId);
    });
  await bus.start();
  return { bus, handled };
}

const sendRaw = (bus: Bus<PostgresTransaction>, id: string, body: Buffer) =>
  bus.transport.send('notes', {
    messageId: id,
    body,
    headers: {},
    contentType: 'application/cloudevents+json',
    key: undefined,
    messageType: Note.type,
  });

describe('input the inbox cannot store', () => {
  it('dead-letters a NUL in an id, and with storeEnvelope a NUL or a lone surrogate in the data, at once and uncounted', async () => {
    const { bus, handled } = await consumer(true);
    try {
      await sendRaw(bus, 'nul-id', event('order\u0000-1', 'fine'));
      for (let i = 0; i < 3; i++) await sendRaw(bus, `nul-${i}`, event(`nul-data-${i}`, `a\u0000b ${i}`));
      for (let i = 0; i < 3; i++) await sendRaw(bus, `lone-${i}`, event(`lone-${i}`, `broken \udc00 ${i}`));
      await sendRaw(bus, 'fine', event('fine-1', 'an emoji 😀 is fine'));
      const dlq = bus.deadLetters('notes');
      await waitFor(async () => (await dlq.count()) === 7 && handled.length === 1, { timeoutMs: 20_000 });
      const dead = await dlq.peek(10);
      expect(dead.map((d) => d.fault?.reason)).toEqual(Array(7).fill('invalid-envelope'));
      expect(dead.every((d) => d.fault?.attempts === 0)).toBe(true);
      expect(dead[0]?.fault?.description).toBe('id: must not contain the NUL character (U+0000)');
      expect(dead[1]?.fault?.description).toMatch(/contains the NUL character .*\(storeEnvelope\)/);
      expect(dead[4]?.fault?.description).toMatch(/unpaired UTF-16 surrogate \(U\+DC00\)/);
      // Bad input is not a failure of the endpoint: seven of them did not pause it.
      expect(bus.killSwitch('notes').state).toBe('closed');
      expect(handled).toEqual(['fine-1']);
      // The handler ran inside the claim's transaction: its row is there once that committed.
      await waitFor(async () => (await bus.inbox?.find('notes', 'fine-1')) !== undefined, { what: 'the inbox row' });
      expect((await bus.inbox?.find('notes', 'fine-1'))?.envelope).toMatchObject({
        data: { text: 'an emoji 😀 is fine' },
      });
    } finally {
      await bus.stop();
    }
  });

  it('handles a NUL in the data when the inbox does not keep envelopes', async () => {
    const { bus, handled } = await consumer(false);
    try {
      await sendRaw(bus, 'nul', event('nul-data', 'a\u0000b'));
      await waitFor(() => handled.length === 1);
      expect(await bus.deadLetters('notes').count()).toBe(0);
    } finally {
      await bus.stop();
    }
  });
});
