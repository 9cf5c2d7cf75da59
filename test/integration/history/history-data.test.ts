import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, createMemoryBroker, defineMessage, memoryTransport } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { inboxOf } from '../inbox/stores.js';

const Note = defineMessage('history.note.v1', z.object({ text: z.string() }));

describe.each(['memory', 'sqlite'] as const)("the history's event data on the %s store", (kind) => {
  let bus: Bus<unknown> | undefined;
  afterEach(async () => {
    await bus?.stop();
    bus = undefined;
  });

  it('keeps the data as JSON text up to history.data.maxBytes, and none past it', async () => {
    const { inbox, config } = inboxOf(kind);
    bus = createBus(
      {
        shutdown: { signals: [], timeoutMs: 2_000 },
        inbox: config as { kind: string },
        history: { enabled: true, data: { enabled: true, maxBytes: 32 } },
      },
      { inbox, transports: [memoryTransport({ broker: createMemoryBroker() })], logger: pino({ level: 'silent' }) },
    );
    bus.endpoint('notes').handle(Note, async () => {});
    await bus.start();
    await bus.send('notes', Note, { text: 'short' }, { key: 'k', id: 'small' });
    await bus.send('notes', Note, { text: 'x'.repeat(100) }, { key: 'k', id: 'large' });
    const b = bus;
    await waitFor(async () => (await b.explain('k')).entries.length === 2, { what: 'two entries' });
    const byId = new Map((await b.explain('k')).entries.map((e) => [e.messageId, e.data]));
    expect(byId.get('small')).toBe('{"text":"short"}');
    expect(byId.get('large')).toBeNull();
  });
});
