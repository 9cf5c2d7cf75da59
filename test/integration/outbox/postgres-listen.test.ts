// The PostgreSQL outbox's LISTEN connection: a commit of another instance wakes the relay at once,
// and the connection survives being terminated (an unhandled pg 'error' would kill the process).
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, createMemoryBroker, defineMessage, memoryTransport } from '../../../src/index.js';
import { postgresInbox, type PostgresTransaction } from '../../../src/inbox/postgres/index.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { waitFor } from '../../support/wait-for.js';
import { PG_URL, testPool, uniqueTable } from '../inbox/stores.js';

const Announced = defineMessage('test.listen.announced.v1', z.object({ n: z.number() }));
const silent = pino({ level: 'silent' });

describe('the PostgreSQL outbox relay', () => {
  const pool = testPool();
  const buses: Bus<PostgresTransaction>[] = [];
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.stop()));
    await pool.end();
  });

  it('is woken by another instance’s commit, and listens again after its connection was terminated', async () => {
    const broker = createMemoryBroker();
    const inboxTable = uniqueTable('inbox');
    const outboxTable = uniqueTable('outbox');
    const make = (pollMs: number) => {
      const bus = createBus(
        {
          shutdown: { signals: [] },
          inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table: inboxTable },
          // A backup poll far longer than the test: only a notification can wake the relay in time.
          outbox: { table: outboxTable, backupPollIntervalMs: pollMs },
          health: { enabled: false },
        },
        { inbox: postgresInbox(), transports: [memoryTransport({ broker })], logger: silent },
      );
      buses.push(bus);
      return bus;
    };
    const relay = make(600_000);
    const seen: number[] = [];
    relay.endpoint('listener', { inbox: false }).handle(Announced, async (m) => {
      seen.push(m.n);
    });
    await relay.start();

    // A writer whose own dispatch never runs: its rows are left to the relay above.
    const writer = make(600_000);
    writer.endpoint('unused', { inbox: false }).handle(Announced, async () => {});
    await writer.start();
    await writer.outbox?.stop();
    await writer.transaction(async ({ publish }) => void (await publish(Announced, { n: 1 })));
    await waitFor(() => seen.includes(1), { timeoutMs: 20_000, what: 'the notified relay to dispatch' });

    const listeners = async () =>
      (
        await pool.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN sluice_outbox_%' AND datname = current_database()",
        )
      ).rows.map((r) => r.pid);
    const before = await listeners();
    expect(before.length).toBeGreaterThanOrEqual(1);
    await pool.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [before]);
    await waitFor(async () => (await listeners()).filter((p) => !before.includes(p)).length >= 1, {
      timeoutMs: 20_000,
      what: 'the LISTEN connections to come back',
    });
    await writer.transaction(async ({ publish }) => void (await publish(Announced, { n: 2 })));
    await waitFor(() => seen.includes(2), { timeoutMs: 20_000, what: 'a notification after the reconnection' });
    expect(relay.state).toBe('started');
  }, 60_000);

  it('shows its counts in bus.health() and in the open health view (counts only)', async () => {
    const bus = createBus(
      {
        shutdown: { signals: [] },
        health: { enabled: true, port: 0 },
        inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table: uniqueTable('inbox') },
        outbox: { table: uniqueTable('outbox') },
      },
      { inbox: postgresInbox(), transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    buses.push(bus);
    bus.endpoint('e', { inbox: false }).handle(Announced, async () => {});
    await bus.start();
    await bus.outbox?.refresh();
    const view = bus.health().outbox;
    expect(view).toMatchObject({ depth: 0, oldestAgeMs: 0, movedAside: 0 });
    expect(typeof view?.readAt).toBe('string');
    const response = await fetch(`${bus.healthServer?.url}/health/endpoints`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { outbox?: unknown };
    expect(body.outbox).toMatchObject({ depth: 0, oldestAgeMs: 0, movedAside: 0, dispatched: 0 });
  });
});
