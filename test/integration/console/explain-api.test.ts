import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  createBus,
  createMemoryBroker,
  defineMessage,
  memoryInbox,
  memoryTransport,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';

const Item = defineMessage('explain.item.v1', z.object({ n: z.number() }));
const ADMIN = 'admin-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';

describe('explain over the admin API', () => {
  let bus: Bus<undefined>;
  let api = '';
  const get = async (path: string, token?: string) => {
    const response = await fetch(`${api}/${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    bus = createBus(
      {
        shutdown: { signals: [], timeoutMs: 2_000 },
        health: { enabled: true, port: 0, token: ADMIN, readToken: READ },
        history: { enabled: true },
      },
      {
        transports: [memoryTransport({ broker: createMemoryBroker() })],
        inbox: memoryInbox(),
        logger: pino({ level: 'silent' }),
      },
    );
    bus.endpoint('items', { ordering: { enabled: true } }).handle(Item, async () => {});
    await bus.start();
    api = `${bus.healthServer?.url}/health/admin/v1`;
    await bus.send('items', Item, { n: 2 }, { id: 'i-2', key: 'a/b?c#d', occurredAt: '2026-11-30T10:00:02Z' });
    await bus.send('items', Item, { n: 1 }, { id: 'i-1', key: 'a/b?c#d', occurredAt: '2026-11-30T10:00:01Z' });
    await waitFor(async () => (await bus.explain('a/b?c#d')).entries.length === 2, { what: '2 entries' });
  });
  afterAll(async () => {
    await bus?.stop();
  });

  it("shows the bus's outbox (depth, oldest age, moved aside) beside the endpoints", async () => {
    // With an inbox store the bus has an outbox: what handlers publish waits there until dispatched.
    await waitFor(
      async () => ((await get('endpoints', READ)).body.outbox as { readAt?: string })?.readAt !== undefined,
      {
        what: 'the outbox counts read',
      },
    );
    const { status, body } = await get('endpoints', READ);
    expect(status).toBe(200);
    expect(body.outbox).toMatchObject({ depth: 0, oldestAgeMs: 0, movedAside: 0 });
  });

  it('answers with the read token or the admin token, and refuses without one', async () => {
    const path = `explain/keys/${encodeURIComponent('a/b?c#d')}`;
    expect((await get(path)).status).toBe(401);
    expect((await get(path, 'wrong-token-0123456789abcdef')).status).toBe(403);
    for (const token of [READ, ADMIN]) {
      const { status, body } = await get(path, token);
      expect(status).toBe(200);
      expect(body.key).toBe('a/b?c#d');
      expect((body.entries as { messageId: string; outcome: string }[]).map((e) => [e.messageId, e.outcome])).toEqual([
        ['i-2', 'applied'],
        ['i-1', 'stale'],
      ]);
    }
    const message = await get('explain/messages/i-1', READ);
    expect(message.status).toBe(200);
    expect((message.body.entries as { summary: string }[])[0]?.summary).toBe(
      'skipped: stale — occurred 2026-11-30T10:00:01Z, key already at 2026-11-30T10:00:02Z from message i-2',
    );
  });

  it('takes endpoint, limit and since, and says what is wrong with them', async () => {
    const path = `explain/keys/${encodeURIComponent('a/b?c#d')}`;
    expect(((await get(`${path}?limit=1`, READ)).body.entries as unknown[]).length).toBe(1);
    expect(((await get(`${path}?since=2999-01-01T00:00:00Z`, READ)).body.entries as unknown[]).length).toBe(0);
    expect(((await get(`${path}?endpoint=items`, READ)).body.entries as unknown[]).length).toBe(2);
    expect((await get(`${path}?endpoint=nope`, READ)).status).toBe(404);
    const bad = await get(`${path}?limit=0&since=yesterday`, READ);
    expect(bad.status).toBe(400);
    expect(bad.body.issues).toEqual([expect.stringMatching(/^limit: /), expect.stringMatching(/^since: /)]);
    expect((await get(`${path}?colour=red`, READ)).status).toBe(400);
    expect(
      (await fetch(`${api}/${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } })).status,
    ).toBe(405);
  });
});
