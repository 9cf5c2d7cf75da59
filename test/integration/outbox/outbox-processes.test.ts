// The outbox with real processes, RabbitMQ and PostgreSQL: a consumer killed between its commit and
// its dispatch, relays in other processes, per-key order through a crash and two relays, and a
// broker stopped during dispatch (a private RabbitMQ node, never the shared one).
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, defineMessage } from '../../../src/index.js';
import { postgresInbox, type PostgresTransaction } from '../../../src/inbox/postgres/index.js';
import { rabbitmqTransport } from '../../../transports/rabbitmq/index.js';
import { type PrivateRabbitmq, startPrivateRabbitmq } from '../../infra/rabbitmq/private-rabbitmq.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { waitFor } from '../../support/wait-for.js';
import { PG_URL, testPool, uniqueTable } from '../inbox/stores.js';
import { deleteTopology, RABBITMQ_URL } from '../rabbitmq/rabbitmq-test-kit.js';

const script = fileURLToPath(new URL('./fixtures/outbox-service.ts', import.meta.url));
const silent = pino({ level: 'silent' });

interface Child {
  process: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: Child[] = [];

function startService(args: string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c) => {
    out += String(c);
  });
  child.stderr?.on('data', (c) => {
    out += String(c);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const c = { process: child, output: () => out, exited };
  children.push(c);
  return c;
}

async function ready(child: Child): Promise<void> {
  await waitFor(
    () => {
      if (child.output().includes('READY')) return true;
      if (child.process.exitCode !== null || child.process.signalCode !== null) {
        throw new Error(`a service exited before it was ready:\n${child.output()}`);
      }
      return false;
    },
    { timeoutMs: 30_000, what: () => `a service to start:\n${child.output()}` },
  );
}

function contracts(run: string) {
  return {
    PlaceOrder: defineMessage(`test.outbox-${run}.place-order.v1`, z.object({ order: z.string(), key: z.string() })),
    OrderPlaced: defineMessage(
      `test.outbox-${run}.order-placed.v1`,
      z.object({ order: z.string(), key: z.string(), n: z.number() }),
    ),
  };
}

/**
 * The downstream service, in this process: `audit` applies each OrderPlaced once through its inbox
 * (an effects row in the same transaction); `arrivals` (no inbox) records every copy the broker
 * delivers, in order, to see that nothing was dispatched twice and that each key's order held.
 */
async function downstream(run: string, url: string, buses: Bus<unknown>[]) {
  const { OrderPlaced } = contracts(run);
  const pool = testPool();
  const effects = `${TEST_SCHEMA}.${uniqueTable('effects')}`;
  await pool.query(`CREATE TABLE ${effects} (message_id text NOT NULL, key text NOT NULL, n integer NOT NULL)`);
  const bus = createBus(
    {
      service: 'downstream',
      transport: { kind: 'rabbitmq', url, reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 } },
      shutdown: { signals: [], timeoutMs: 2_000 },
      inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table: uniqueTable('inbox') },
      outbox: { enabled: false },
    },
    { inbox: postgresInbox(), transports: [rabbitmqTransport()], logger: silent },
  );
  buses.push(bus as Bus<unknown>);
  const arrivals: { id: string; key: string; n: number; order: string }[] = [];
  bus.endpoint(`outbox-arrivals-${run}`, { inbox: false }).handle(OrderPlaced, async (m, ctx) => {
    arrivals.push({ id: ctx.messageId, key: m.key, n: m.n, order: m.order });
  });
  bus.endpoint(`outbox-audit-${run}`).handle(OrderPlaced, async (m, ctx) => {
    await (ctx.tx as PostgresTransaction).query(`INSERT INTO ${effects} VALUES ($1, $2, $3)`, [
      ctx.messageId,
      m.key,
      m.n,
    ]);
  });
  await bus.start();
  const applied = async () =>
    (await pool.query(`SELECT count(*)::int AS n, count(DISTINCT message_id)::int AS d FROM ${effects}`)).rows[0] as {
      n: number;
      d: number;
    };
  return { bus, arrivals, applied, pool };
}

const outboxRows = async (pool: ReturnType<typeof testPool>, table: string) =>
  (await pool.query(`SELECT message_id, entity_key, dispatched_at, attempts FROM ${TEST_SCHEMA}.${table} ORDER BY seq`))
    .rows as { message_id: string; entity_key: string | null; dispatched_at: Date | null; attempts: number }[];

describe('the outbox across processes (RabbitMQ + PostgreSQL)', () => {
  const buses: Bus<unknown>[] = [];
  const pool = testPool();
  const runs: string[] = [];

  beforeAll(async () => {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${TEST_SCHEMA}`);
  });
  afterAll(async () => {
    for (const c of children) c.process.kill('SIGKILL');
    await Promise.allSettled(buses.map((b) => b.stop()));
    await deleteTopology(
      runs.flatMap((run) => {
        const { PlaceOrder, OrderPlaced } = contracts(run);
        return [
          { address: `outbox-orders-${run}`, endpoint: `outbox-orders-${run}`, messageTypes: [PlaceOrder.type] },
          { address: `outbox-audit-${run}`, endpoint: `outbox-audit-${run}`, messageTypes: [OrderPlaced.type] },
          { address: `outbox-arrivals-${run}`, endpoint: `outbox-arrivals-${run}`, messageTypes: [OrderPlaced.type] },
        ];
      }),
    ).catch(() => {});
    await pool.end();
  }, 60_000);

  it('a consumer killed after its commit and before its dispatch: restarted, the message goes out with the same id, applied once downstream', async () => {
    const run = Math.random().toString(36).slice(2, 8);
    runs.push(run);
    const { PlaceOrder } = contracts(run);
    const inboxTable = uniqueTable('inbox');
    const outboxTable = uniqueTable('outbox');
    const down = await downstream(run, RABBITMQ_URL, buses);
    const doomed = startService(['consumer-kill', run, RABBITMQ_URL, inboxTable, outboxTable]);
    await ready(doomed);
    await down.bus.send(`outbox-orders-${run}`, PlaceOrder, { order: 'o-1', key: 'k' });
    expect((await doomed.exited).signal).toBe('SIGKILL');
    const left = await outboxRows(pool, outboxTable);
    expect(left).toHaveLength(1);
    expect(left[0]?.dispatched_at).toBeNull();
    expect(down.arrivals).toEqual([]);

    const heir = startService(['consumer', run, RABBITMQ_URL, inboxTable, outboxTable]);
    await ready(heir);
    await waitFor(async () => (await down.applied()).d === 1, { timeoutMs: 30_000, what: 'the effect downstream' });
    await waitFor(async () => (await outboxRows(pool, outboxTable))[0]?.dispatched_at !== null);
    expect(down.arrivals.map((a) => a.id)).toEqual([left[0]?.message_id]);
    // The broker redelivered the command: the heir's inbox skipped it as a duplicate, nothing new was written.
    expect(await outboxRows(pool, outboxTable)).toHaveLength(1);
    expect(await down.applied()).toEqual({ n: 1, d: 1 });
    heir.process.kill('SIGTERM');
    await heir.exited;
  }, 120_000);

  it('per-key order through a crash and two relays; every row dispatched once, applied once downstream', async () => {
    const run = Math.random().toString(36).slice(2, 8);
    runs.push(run);
    const inboxTable = uniqueTable('inbox');
    const outboxTable = uniqueTable('outbox');
    const perKey = 40;
    const down = await downstream(run, RABBITMQ_URL, buses);
    const writer = startService(['writer-kill', run, RABBITMQ_URL, inboxTable, outboxTable, String(perKey)]);
    expect((await writer.exited).signal).toBe('SIGKILL');
    const written = await outboxRows(pool, outboxTable);
    expect(written.length).toBeGreaterThanOrEqual((5 * perKey) / 2);
    const total = written.length;
    expect(written.some((r) => r.dispatched_at === null)).toBe(true);

    const relays = [
      startService(['relay', run, RABBITMQ_URL, inboxTable, outboxTable]),
      startService(['relay', run, RABBITMQ_URL, inboxTable, outboxTable]),
    ];
    await Promise.all(relays.map(ready));
    await waitFor(async () => (await down.applied()).d === total, {
      timeoutMs: 60_000,
      what: `all ${total} applied`,
    });
    await waitFor(async () => (await outboxRows(pool, outboxTable)).every((r) => r.dispatched_at !== null), {
      timeoutMs: 30_000,
    });
    expect(await down.applied()).toEqual({ n: total, d: total });
    await waitFor(() => down.arrivals.length >= total, { timeoutMs: 30_000, what: 'every copy to arrive' });
    // Only a row the writer was sending when it died (claimed, not marked: its lease ran out) may
    // have gone to the broker twice; every other row went exactly once, from one of the relays.
    const inFlightAtCrash = new Set(
      written.filter((r) => r.dispatched_at === null && r.attempts > 0).map((r) => r.message_id),
    );
    const copies = new Map<string, number>();
    for (const a of down.arrivals) copies.set(a.id, (copies.get(a.id) ?? 0) + 1);
    expect(copies.size).toBe(total);
    for (const [id, n] of copies) if (n > 1) expect(inFlightAtCrash.has(id)).toBe(true);
    expect(down.arrivals.length).toBeLessThanOrEqual(total + inFlightAtCrash.size);
    // Each key's events arrived in commit order (the counter numbered them 1, 2, 3, ... as they
    // committed); a second copy of an interrupted row comes right after its first: seen once here.
    for (const key of ['k0', 'k1', 'k2', 'k3', 'k4']) {
      const ns = [...new Map(down.arrivals.filter((a) => a.key === key).map((a) => [a.id, a.n])).values()];
      expect(ns).toEqual(Array.from({ length: ns.length }, (_, i) => i + 1));
    }
    for (const r of relays) r.process.kill('SIGTERM');
    await Promise.all(relays.map((r) => r.exited));
  }, 180_000);

  describe('with RabbitMQ stopped during dispatch (a private node)', () => {
    let broker: PrivateRabbitmq;
    beforeAll(async () => {
      broker = await startPrivateRabbitmq();
    }, 180_000);
    afterAll(async () => {
      await Promise.allSettled(buses.map((b) => b.stop()));
      await broker?.remove();
    }, 60_000);

    it('keeps the rows while the broker is away and dispatches every one after it is back', async () => {
      const run = Math.random().toString(36).slice(2, 8);
      const { OrderPlaced } = contracts(run);
      const down = await downstream(run, broker.url, buses);
      const producer = createBus(
        {
          service: 'producer',
          transport: {
            kind: 'rabbitmq',
            url: broker.url,
            reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
            publishTimeoutMs: 1_000,
          },
          shutdown: { signals: [], timeoutMs: 2_000 },
          inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table: uniqueTable('inbox') },
          outbox: {
            table: uniqueTable('outbox'),
            dispatchTimeoutMs: 1_500,
            leaseMs: 3_000,
            retryDelayMs: { initial: 200, factor: 2, max: 1_000 },
            backupPollIntervalMs: 300,
          },
        },
        { inbox: postgresInbox(), transports: [rabbitmqTransport()], logger: silent },
      );
      buses.push(producer as Bus<unknown>);
      await producer.start();
      const total = 300;
      const write = async (from: number, to: number) => {
        for (let i = from; i < to; i++) {
          await producer.transaction(async ({ publish }) => {
            await publish(OrderPlaced, { order: `p-${i}`, key: `k${i % 7}`, n: i }, { key: `k${i % 7}` });
          });
        }
      };
      // Half while the broker is up, the rest while it is away: in the middle of dispatching.
      const firstHalf = write(0, total / 2);
      await waitFor(() => down.arrivals.length >= 30, { timeoutMs: 30_000, what: 'some arrivals' });
      await broker.stopApp();
      await firstHalf;
      await write(total / 2, total);
      await waitFor(() => (producer.health().outbox?.retried ?? 0) > 0, {
        timeoutMs: 30_000,
        what: 'failed dispatches',
      });
      await producer.outbox?.refresh();
      expect(producer.health().outbox?.depth).toBeGreaterThan(0);
      await broker.startApp();
      await waitFor(async () => (await down.applied()).d === total, {
        timeoutMs: 90_000,
        what: `all ${total} applied`,
      });
      await producer.outbox?.refresh();
      expect(producer.health().outbox).toMatchObject({ depth: 0, movedAside: 0 });
      expect(await down.applied()).toEqual({ n: total, d: total });
      for (let k = 0; k < 7; k++) {
        // First arrival of each id, per key: in commit order (a copy the broker took just before it
        // stopped may come again after it; the downstream inbox skips it).
        const firsts = [...new Map(down.arrivals.filter((a) => a.key === `k${k}`).map((a) => [a.id, a.n])).values()];
        expect(firsts).toEqual([...firsts].sort((a, b) => a - b));
      }
    }, 240_000);
  });
});
