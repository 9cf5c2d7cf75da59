// The transactional outbox through a bus, on each store (memory, a SQLite file, PostgreSQL in
// TEST_SCHEMA), with the memory broker: what a handler or bus.transaction publishes leaves only
// after its transaction commits, exactly once.
import pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  ConfigError,
  createBus,
  createMemoryBroker,
  defineMessage,
  memoryInbox,
  memoryTransport,
  TransportError,
  type TransportDefinition,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { inboxOf, PG_URL, uniqueTable } from '../inbox/stores.js';
import { postgresInbox } from '../../../src/inbox/postgres/index.js';
import {
  POSTGRES_OUTBOX_WRITE_VERSION,
  postgresOutboxDdl,
  postgresOutboxWriteComment,
  postgresOutboxWriteSignature,
} from '../../../src/inbox/postgres/postgres-outbox-ddl.js';

const PlaceOrder = defineMessage(
  'shop.place-order.v1',
  z.object({ order: z.string(), attempt: z.number().optional() }),
);
const OrderPlaced = defineMessage('shop.order-placed.v1', z.object({ order: z.string(), attempt: z.number() }));
const Huge = defineMessage('shop.huge.v1', z.object({ order: z.string() }));
const silent = pino({ level: 'silent' });

/**
 * A memory transport whose publishes can be made to fail (down), to refuse a type for good, or to
 * wait for the broker's confirmation until `held` resolves (a slow broker).
 */
function faultyMemory(state: { down: boolean; held?: Promise<void> | undefined }): TransportDefinition {
  const base = memoryTransport({ broker: createMemoryBroker() }) as TransportDefinition;
  return {
    ...base,
    create(config, deps) {
      const t = base.create(config, deps);
      const publish = t.publish.bind(t);
      t.publish = async (m) => {
        if (m.messageType === Huge.type)
          throw new TransportError('message too large for the broker', { retryable: false });
        if (state.down) throw new TransportError('broker unreachable');
        await state.held;
        return publish(m);
      };
      return t;
    },
  };
}

describe.each(['memory', 'sqlite', 'postgres'] as const)('the outbox on the %s store', (kind) => {
  let bus: Bus<unknown> | undefined;
  const broker: { down: boolean; held?: Promise<void> | undefined } = { down: false };
  afterEach(async () => {
    await bus?.stop();
    bus = undefined;
    broker.down = false;
    broker.held = undefined;
  });

  function makeBus(outbox: object = {}, endpoint: object = {}) {
    const { inbox, config } = inboxOf(kind);
    const b = createBus(
      {
        shutdown: { signals: [], timeoutMs: 2_000 },
        inbox: config as { kind: string },
        outbox: { table: uniqueTable('outbox'), pollIntervalMs: 20, backupPollIntervalMs: 200, ...outbox },
        endpoints: { orders: { retry: { kind: 'immediate', retries: 3 }, ...endpoint } },
      },
      { inbox, transports: [faultyMemory(broker)], logger: silent },
    );
    const seen: { id: string; order: string; attempt: number }[] = [];
    b.endpoint('audit', { inbox: false }).handle(OrderPlaced, async (m, ctx) => {
      seen.push({ id: ctx.messageId, order: m.order, attempt: m.attempt });
    });
    bus = b;
    return { bus: b, seen };
  }

  it('dispatches nothing of an attempt that published and then threw; the retry publishes once', async () => {
    const { bus, seen } = makeBus();
    bus.endpoint('orders').handle(PlaceOrder, async (m, ctx) => {
      await ctx.publish(OrderPlaced, { order: m.order, attempt: ctx.attempt });
      if (ctx.attempt === 1) throw new Error('the handler failed after publishing');
    });
    await bus.start();
    await bus.send('orders', PlaceOrder, { order: 'o-1' });
    await waitFor(() => seen.length === 1, { what: 'the retry’s event' });
    expect(seen[0]).toMatchObject({ order: 'o-1', attempt: 2 });
    // Marked dispatched once the broker confirmed (the memory broker delivers before that).
    await waitFor(async () => (await bus.outbox?.store.stats())?.depth === 0);
    await bus.outbox?.refresh();
    expect(bus.health().outbox).toMatchObject({ depth: 0, movedAside: 0 });
    const rows = (await bus.outbox?.store.rows(100)) ?? [];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ messageId: seen[0]?.id, destinationKind: 'publish', sourceEndpoint: 'orders' });
    expect(rows[0]?.dispatchedAt).toBeInstanceOf(Date);
  });

  it('dispatches nothing when the attempt that published failed and the one that succeeded did not publish', async () => {
    const { bus, seen } = makeBus();
    let handled = 0;
    bus.endpoint('orders').handle(PlaceOrder, async (m, ctx) => {
      if (ctx.attempt === 1) {
        await ctx.publish(OrderPlaced, { order: m.order, attempt: 1 });
        throw new Error('the first attempt failed');
      }
      handled++;
    });
    await bus.start();
    await bus.send('orders', PlaceOrder, { order: 'o-2' });
    await waitFor(() => handled === 1 && bus.health().endpoints.orders?.counters.completed === 1);
    bus.outbox?.wake();
    await waitFor(async () => (await bus.outbox?.store.stats())?.depth === 0);
    expect(await bus.outbox?.store.rows(100)).toEqual([]);
    expect(seen).toEqual([]);
  });

  it('bus.transaction: a throw rolls back and sends nothing; a return commits and dispatches once', async () => {
    const { bus, seen } = makeBus();
    bus.endpoint('orders').handle(PlaceOrder, async () => {});
    await bus.start();
    await expect(
      bus.transaction(async ({ publish }) => {
        await publish(OrderPlaced, { order: 'never', attempt: 0 });
        throw new Error('the work failed');
      }),
    ).rejects.toThrow('the work failed');
    const result = await bus.transaction(async ({ publish }) => {
      const id = await publish(OrderPlaced, { order: 'o-3', attempt: 0 });
      return { id };
    });
    await waitFor(() => seen.length === 1);
    expect(seen[0]).toMatchObject({ id: result.id, order: 'o-3' });
    const rows = (await bus.outbox?.store.rows(100)) ?? [];
    expect(rows.map((r) => r.messageId)).toEqual([result.id]);
  });

  it('stores hostile keys and ids as they are, and dispatches them as they are', async () => {
    const { bus, seen } = makeBus();
    bus.endpoint('orders').handle(PlaceOrder, async () => {});
    await bus.start();
    const key = `k'"\\x00;-- $1 \u00e9\u{1F600}`;
    const id = `id'); DROP TABLE x; --\\`;
    await bus.transaction(async ({ publish }) => {
      await publish(OrderPlaced, { order: `o'"\\`, attempt: 0 }, { key, id });
    });
    await waitFor(() => seen.length === 1);
    expect(seen[0]).toMatchObject({ id, order: `o'"\\` });
    const rows = (await bus.outbox?.store.rows(10)) ?? [];
    expect(rows.map((r) => [r.messageId, r.key])).toEqual([[id, key]]);
  });

  it('dispatches the rows of one key one transaction after another, each transaction’s in its order', async () => {
    const { bus, seen } = makeBus();
    bus.endpoint('orders').handle(PlaceOrder, async () => {});
    await bus.start();
    // Concurrent transactions, three rows each, all of one key. (That transactions of a key go out
    // in commit order is checked where commit order is known: outbox-processes.test.ts.)
    let committed = 0;
    await Promise.all(
      [0, 1, 2, 3].map(() =>
        bus.transaction(async ({ publish }) => {
          const from = committed;
          committed += 3;
          for (let i = 0; i < 3; i++) await publish(OrderPlaced, { order: 'same', attempt: from + i }, { key: 'k-1' });
        }),
      ),
    );
    await waitFor(() => seen.length === 12, { what: 'twelve events' });
    const order = seen.map((s) => s.attempt);
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    for (let block = 0; block < 12; block += 3) {
      const first = order[block] as number;
      expect(first % 3).toBe(0);
      expect(order.slice(block, block + 3)).toEqual([first, first + 1, first + 2]);
    }
  });

  it('dispatches a key’s rows in process one after another, behind its own earlier rows, without the relay', async () => {
    // The relay sleeps for ten minutes: only the in-process dispatch can send these.
    const { bus, seen } = makeBus({ pollIntervalMs: 600_000, backupPollIntervalMs: 600_000 });
    bus.endpoint('orders').handle(PlaceOrder, async () => {});
    let confirm!: () => void;
    broker.held = new Promise<void>((resolve) => {
      confirm = resolve;
    });
    await bus.start();
    // Each commit returns at once; the broker holds the first row, so each later row of the key is
    // written behind this instance's own undispatched rows.
    for (let i = 0; i < 10; i++) {
      await bus.transaction(({ publish }) => publish(OrderPlaced, { order: 'hot', attempt: i }, { key: 'k-hot' }));
    }
    expect((await bus.outbox?.store.rows(100))?.map((r) => r.attempts)).toEqual(Array(10).fill(1));
    confirm();
    await waitFor(() => seen.length === 10, { what: 'ten events' });
    expect(seen.map((s) => s.attempt)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(bus.health().outbox?.dispatched).toBe(10);
  });

  it('gives the rest of a key’s rows to the relay when one fails in process, and they go out after it, in order', async () => {
    const { bus, seen } = makeBus({ retryDelayMs: { initial: 50, factor: 1, max: 50 } });
    bus.endpoint('orders').handle(PlaceOrder, async () => {});
    let confirm!: () => void;
    broker.held = new Promise<void>((resolve) => {
      confirm = resolve;
    });
    await bus.start();
    for (let i = 0; i < 6; i++) {
      await bus.transaction(({ publish }) => publish(OrderPlaced, { order: 'flaky', attempt: i }, { key: 'k-flaky' }));
    }
    // The broker goes down while it holds the first row: that one goes out, the next fails, and the
    // four behind it must not overtake it (they go to the relay, which sends them after it).
    broker.down = true;
    confirm();
    await waitFor(() => (bus.health().outbox?.retried ?? 0) >= 1, { what: 'the failed first row' });
    broker.down = false;
    await waitFor(() => seen.length === 6, { what: 'six events', timeoutMs: 15_000 });
    expect(seen.map((s) => s.attempt)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('refuses a bad message at the publish call, inside the transaction', async () => {
    const { bus } = makeBus();
    bus.endpoint('orders').handle(PlaceOrder, async () => {});
    await bus.start();
    await expect(
      bus.transaction(async ({ publish }) => {
        await publish(OrderPlaced, { order: 42 } as never);
      }),
    ).rejects.toThrow(/data.order/);
    expect(await bus.outbox?.store.rows(100)).toEqual([]);
  });

  it('with outbox: false on the endpoint, publishes at once (even from an attempt that then fails)', async () => {
    const { bus, seen } = makeBus({}, { outbox: false });
    bus.endpoint('orders').handle(PlaceOrder, async (m, ctx) => {
      await ctx.publish(OrderPlaced, { order: m.order, attempt: ctx.attempt });
      if (ctx.attempt === 1) throw new Error('failed after publishing');
    });
    await bus.start();
    await bus.send('orders', PlaceOrder, { order: 'o-4' });
    await waitFor(() => seen.length === 2);
    expect(seen.map((s) => s.attempt).sort()).toEqual([1, 2]);
    expect(await bus.outbox?.store.rows(100)).toEqual([]);
  });

  it('keeps rows while the broker is down, retries them, trips the producing endpoint’s kill switch, and dispatches them after', async () => {
    const { bus, seen } = makeBus(
      { retryDelayMs: { initial: 20, factor: 1, max: 20 } },
      { killSwitch: { dependencyFailures: 3, restartDelayMs: { initial: 100, factor: 1, max: 100 } } },
    );
    bus.endpoint('orders').handle(PlaceOrder, async (m, ctx) => {
      await ctx.publish(OrderPlaced, { order: m.order, attempt: ctx.attempt });
    });
    await bus.start();
    broker.down = true;
    for (let i = 0; i < 5; i++) await sendDirect(bus, `o-down-${i}`);
    // Each failed try of a row is a dependency failure of `orders`: three in a row trip it (and
    // the messages it has not handled yet go back to the broker until it probes).
    await waitFor(() => bus.health().endpoints.orders?.killSwitch.state === 'tripped', { what: 'the trip' });
    expect(seen).toEqual([]);
    expect(bus.health().endpoints.orders?.killSwitch.lastFailure).toMatchObject({ reason: 'dependency' });
    expect(bus.health().endpoints.orders?.killSwitch.lastFailure?.description).toContain('broker (outbox)');
    // (The count of rows given back follows once their retry times are written.)
    await waitFor(() => (bus.health().outbox?.retried ?? 0) >= 3, { what: 'three rows given back' });
    broker.down = false;
    await waitFor(() => seen.length === 5, { what: 'the rows after the broker came back' });
    expect(new Set(seen.map((s) => s.order)).size).toBe(5);
  });

  it('settles a delivery at its commit, without waiting for the broker, until dispatchBacklog rows wait for it', async () => {
    const { bus, seen } = makeBus({ dispatchBacklog: 2 }, { concurrency: 10 });
    let handled = 0;
    bus.endpoint('orders').handle(PlaceOrder, async (m, ctx) => {
      await ctx.publish(OrderPlaced, { order: m.order, attempt: ctx.attempt });
      handled++;
    });
    let confirm!: () => void;
    broker.held = new Promise<void>((resolve) => {
      confirm = resolve;
    });
    await bus.start();
    for (let i = 0; i < 5; i++) await sendDirect(bus, `o-slow-${i}`);
    const completed = () => bus.health().endpoints.orders?.counters.completed ?? 0;
    // The broker confirms nothing: two deliveries settle at their commits; the others committed
    // too, and wait for the backlog to fall before they settle.
    await waitFor(async () => handled === 5 && (await bus.outbox?.store.stats())?.depth === 5, {
      what: 'five rows committed',
    });
    await waitFor(() => completed() === 2, { what: 'two settled' });
    expect(seen).toEqual([]);
    // (Three more are committed and not settled: the backlog holds them back.)
    await bus.outbox?.refresh();
    expect(completed()).toBe(2);
    confirm();
    await waitFor(() => completed() === 5 && seen.length === 5, { what: 'all settled and dispatched once' });
    expect(new Set(seen.map((s) => s.order)).size).toBe(5);
  });

  it('moves a message the broker refuses for good aside, with its reason, and goes on', async () => {
    const { bus, seen } = makeBus();
    bus.endpoint('orders').handle(PlaceOrder, async () => {});
    await bus.start();
    await bus.transaction(async ({ publish }) => {
      await publish(Huge, { order: 'big' });
      await publish(OrderPlaced, { order: 'o-5', attempt: 0 });
    });
    await waitFor(() => seen.length === 1);
    await waitFor(async () => (await bus.outbox?.store.stats())?.movedAside === 1);
    const rows = (await bus.outbox?.store.rows(100)) ?? [];
    const aside = rows.find((r) => r.messageType === Huge.type);
    expect(aside?.failedReason).toContain('message too large for the broker');
    expect(aside?.dispatchedAt).toBeUndefined();
    await bus.outbox?.refresh();
    expect(bus.health().outbox?.movedAside).toBe(1);
  });

  it('lets the next message of a key go once the one before it is moved aside (a refused row blocks nothing)', async () => {
    const { bus, seen } = makeBus();
    bus.endpoint('orders').handle(PlaceOrder, async () => {});
    await bus.start();
    await bus.transaction(async ({ publish }) => {
      await publish(Huge, { order: 'o-7' }, { key: 'o-7' });
      await publish(OrderPlaced, { order: 'o-7', attempt: 0 }, { key: 'o-7' });
    });
    await waitFor(() => seen.length === 1, { timeoutMs: 15_000, what: "the key's second message" });
    expect(seen[0]?.order).toBe('o-7');
    expect((await bus.outbox?.store.stats())?.movedAside).toBe(1);
  });

  it('with retention 0 deletes rows at dispatch; otherwise cleanup deletes them past the retention', async () => {
    const { bus, seen } = makeBus({ retentionMs: 0 });
    bus.endpoint('orders').handle(PlaceOrder, async () => {});
    await bus.start();
    await bus.transaction(async ({ publish }) => void (await publish(OrderPlaced, { order: 'o-6', attempt: 0 })));
    await waitFor(() => seen.length === 1);
    await waitFor(async () => ((await bus.outbox?.store.rows(100)) ?? []).length === 0);
    await bus.stop();

    const second = makeBus({ retentionMs: 1 });
    second.bus.endpoint('orders').handle(PlaceOrder, async () => {});
    await second.bus.start();
    for (let i = 0; i < 3; i++) {
      await second.bus.transaction(
        async ({ publish }) => void (await publish(OrderPlaced, { order: `r-${i}`, attempt: 0 })),
      );
    }
    await waitFor(() => second.seen.length === 3);
    await waitFor(async () => ((await second.bus.outbox?.store.rows(100)) ?? []).every((r) => r.dispatchedAt));
    await new Promise((r) => setTimeout(r, 10));
    expect(await second.bus.outbox?.cleanup()).toBe(3);
    expect(await second.bus.outbox?.store.rows(100)).toEqual([]);
  });

  it('batch handlers write their publishes in the batch transaction and dispatch them after it commits', async () => {
    const { bus, seen } = makeBus();
    let calls = 0;
    bus.endpoint('orders').handleBatch(
      PlaceOrder,
      async (messages, ctx) => {
        calls++;
        for (const m of messages) await ctx.publish(OrderPlaced, { order: m.order, attempt: calls });
        if (calls === 1) throw new Error('the first batch failed');
      },
      { maxMessages: 10, maxWaitMs: 20 },
    );
    await bus.start();
    for (let i = 0; i < 5; i++) await sendDirect(bus, `b-${i}`);
    await waitFor(() => seen.length >= 5 && bus.health().endpoints.orders?.counters.completed === 5);
    // Nothing of the failed batch went out.
    expect(seen.every((s) => s.attempt > 1)).toBe(true);
    expect(new Set(seen.map((s) => s.order)).size).toBe(5);
    expect(seen).toHaveLength(5);
  });
});

async function sendDirect(bus: Bus<unknown>, order: string): Promise<void> {
  await bus.send('orders', PlaceOrder, { order });
}

describe('outbox configuration', () => {
  it('names the field of a bad outbox setting', () => {
    expect(() =>
      createBus({ outbox: { leaseMs: 1_000, dispatchTimeoutMs: 5_000 } }, { inbox: memoryInbox(), logger: silent }),
    ).toThrow(/outbox\.leaseMs/);
    expect(() => createBus({ outbox: { table: 'Bad-Name' } }, { logger: silent })).toThrow(/outbox\.table/);
    expect(() => createBus({ outbox: { nope: 1 } } as never, { logger: silent })).toThrow(/outbox/);
  });

  it('refuses bus.transaction on a bus without an inbox store, saying why', async () => {
    const bus = createBus({ shutdown: { signals: [] } }, { logger: silent });
    await expect(bus.transaction(async () => 1)).rejects.toThrow(ConfigError);
    await expect(bus.transaction(async () => 1)).rejects.toThrow(/needs an inbox store/);
  });
});

describe.each(['rerun', 'savepoint'] as const)('the outbox under group commit on PostgreSQL (%s)', (isolation) => {
  let bus: Bus<unknown> | undefined;
  afterEach(async () => {
    await bus?.stop();
  });

  it('dispatches the publishes of the members that committed, none of the member that failed on its own', async () => {
    const b = createBus(
      {
        shutdown: { signals: [] },
        inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table: uniqueTable('inbox') },
        outbox: { table: uniqueTable('outbox') },
      },
      {
        inbox: postgresInbox() as never,
        transports: [memoryTransport({ broker: createMemoryBroker() })],
        logger: silent,
      },
    );
    bus = b;
    const seen: string[] = [];
    b.endpoint('audit', { inbox: false, concurrency: 8 }).handle(OrderPlaced, async (m) => {
      seen.push(m.order);
    });
    b.endpoint('orders', {
      concurrency: 16,
      prefetch: 32,
      groupCommit: { maxMessages: 16, maxWaitMs: 20, isolation },
      retry: { kind: 'none' },
    }).handle(PlaceOrder, async (m, ctx) => {
      await ctx.publish(OrderPlaced, { order: m.order, attempt: ctx.attempt });
      if (m.order === 'poison') throw new Error('this one fails on its own');
    });
    await b.start();
    const orders = Array.from({ length: 30 }, (_, i) => (i === 13 ? 'poison' : `g-${i}`));
    await Promise.all(orders.map((order) => b.send('orders', PlaceOrder, { order })));
    await waitFor(() => {
      const c = b.health().endpoints.orders?.counters;
      return (c?.completed ?? 0) === 29 && (c?.deadLettered ?? 0) === 1;
    });
    await waitFor(() => seen.length >= 29);
    expect(seen.sort()).toEqual(orders.filter((o) => o !== 'poison').sort());
    // Marked dispatched in the background once confirmed.
    await waitFor(async () => ((await b.outbox?.store.rows(100)) ?? []).every((r) => r.dispatchedAt !== undefined));
    expect(await b.outbox?.store.rows(100)).toHaveLength(29);
  });
});

describe('the outbox on PostgreSQL, written with the COMMIT', () => {
  let bus: Bus<unknown> | undefined;
  afterEach(async () => {
    await bus?.stop();
    bus = undefined;
  });

  /** `options`: connection settings (`-c name=value`) for every connection of the inbox. */
  /** The write function as an earlier release made it: the same signature, another version's comment. */
  function earlierRelease(ddl: string): string {
    const fn = ddl.slice(ddl.indexOf('CREATE OR REPLACE FUNCTION'));
    return fn.replace(postgresOutboxWriteComment(POSTGRES_OUTBOX_WRITE_VERSION), postgresOutboxWriteComment(0));
  }

  function pgBus(outboxTable: string, inboxTable = uniqueTable('inbox'), createTables = true, options?: string) {
    const connectionString = options === undefined ? PG_URL : `${PG_URL}?options=${encodeURIComponent(options)}`;
    const b = createBus(
      {
        shutdown: { signals: [] },
        inbox: { kind: 'postgres', connectionString, schema: TEST_SCHEMA, table: inboxTable, createTables },
        outbox: { table: outboxTable },
        endpoints: { orders: { retry: { kind: 'immediate', retries: 3 } } },
      },
      {
        inbox: postgresInbox() as never,
        transports: [memoryTransport({ broker: createMemoryBroker() })],
        logger: silent,
      },
    );
    const seen: { order: string; attempt: number }[] = [];
    const events: { order: string; key: string | undefined; id: string }[] = [];
    b.endpoint('audit', { inbox: false }).handle(OrderPlaced, async (m, ctx) => {
      seen.push({ order: m.order, attempt: m.attempt });
      events.push({ order: m.order, key: ctx.envelope.key, id: ctx.messageId });
    });
    bus = b;
    return { bus: b, seen, events };
  }

  it('fails an attempt whose handler swallowed a failed statement: nothing of it goes out; the retry publishes once', async () => {
    const { bus, seen } = pgBus(uniqueTable('outbox'));
    bus.endpoint('orders').handle(PlaceOrder, async (m, ctx) => {
      await ctx.publish(OrderPlaced, { order: m.order, attempt: ctx.attempt });
      // The transaction is aborted; the outbox's write goes with the COMMIT and fails with it.
      if (ctx.attempt === 1) await (ctx.tx as unknown as pg.PoolClient).query('SELECT 1 / 0').catch(() => {});
    });
    await bus.start();
    await bus.send('orders', PlaceOrder, { order: 'swallowed' });
    await waitFor(() => seen.length === 1, { what: 'the retry’s event' });
    expect(seen).toEqual([{ order: 'swallowed', attempt: 2 }]);
    const counters = bus.health().endpoints.orders?.counters;
    expect(counters).toMatchObject({ completed: 1, deadLettered: 0 });
    await waitFor(async () => (await bus.outbox?.store.stats())?.depth === 0);
    expect(await bus.outbox?.store.rows(100)).toHaveLength(1);
  });

  it('writes hostile content as it is, with standard_conforming_strings on or off (values go inline as literals)', async () => {
    for (const conforming of ['on', 'off']) {
      const settings = `-c standard_conforming_strings=${conforming}`;
      const { bus: b, events: seen } = pgBus(uniqueTable('outbox'), undefined, true, settings);
      const hostile = `'); DROP TABLE x; -- \\' \\x00 $$ $sluice$ E'\\' \u00e9 \u{1F600} "quoted"`;
      b.endpoint('orders').handle(PlaceOrder, async (m, ctx) => {
        await ctx.publish(OrderPlaced, { order: m.order, attempt: ctx.attempt }, { key: hostile, id: `${hostile}-id` });
      });
      await b.start();
      await b.send('orders', PlaceOrder, { order: hostile });
      await waitFor(() => seen.length === 1, { what: `the event (standard_conforming_strings ${conforming})` });
      expect(seen).toEqual([{ order: hostile, key: hostile, id: `${hostile}-id` }]);
      await b.stop();
      bus = undefined;
    }
  });

  it('with inbox.createTables false, refuses to start while the write function is missing, naming it', async () => {
    const inboxTable = uniqueTable('inbox');
    const table = uniqueTable('outbox');
    const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
    try {
      // The inbox's tables made by a first start; the outbox's table of an earlier version.
      const { bus: first } = pgBus(uniqueTable('outbox'), inboxTable);
      first.endpoint('orders').handle(PlaceOrder, async () => {});
      await first.start();
      await first.stop();
      const ddl = postgresOutboxDdl(TEST_SCHEMA, table);
      await admin.query(ddl.slice(0, ddl.indexOf('CREATE OR REPLACE FUNCTION')));
      const { bus } = pgBus(table, inboxTable, false);
      bus.endpoint('orders').handle(PlaceOrder, async () => {});
      const started = bus.start();
      await expect(started).rejects.toBeInstanceOf(ConfigError);
      await expect(started).rejects.toThrow(
        `outbox.table: the function ${TEST_SCHEMA}.${table}_write(text[], text[], text[], text[], text[], jsonb[], bytea[], text[], text[], integer, text, text, double precision) missing or out of date and inbox.createTables is false`,
      );
      // The function an earlier release made (same signature, its own version): refused just the same.
      await admin.query(earlierRelease(ddl));
      const { bus: again } = pgBus(table, inboxTable, false);
      again.endpoint('orders').handle(PlaceOrder, async () => {});
      await expect(again.start()).rejects.toThrow(
        `_write(text[], text[], text[], text[], text[], jsonb[], bytea[], text[], text[], integer, text, text, double precision) of an earlier release (version 0; this release writes version ${POSTGRES_OUTBOX_WRITE_VERSION}) missing or out of date`,
      );
    } finally {
      await admin.query(`DROP FUNCTION IF EXISTS ${TEST_SCHEMA}.${table}_write`);
      await admin.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${table}`);
      await admin.end();
    }
  });

  it('refuses to start on connections whose transactions are not read committed, naming the setting', async () => {
    const { bus: b } = pgBus(
      uniqueTable('outbox'),
      undefined,
      true,
      '-c default_transaction_isolation=repeatable\\ read',
    );
    b.endpoint('orders').handle(PlaceOrder, async () => {});
    const started = b.start();
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toThrow(/read committed.*repeatable read \(default_transaction_isolation\)/);
  });

  it('brings an outbox table of an earlier version up to date at start (its write function, leased_by)', async () => {
    const table = uniqueTable('outbox');
    const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
    try {
      // The table and indexes of an earlier version, without the function ...
      const ddl = postgresOutboxDdl(TEST_SCHEMA, table);
      await admin.query(ddl.slice(0, ddl.indexOf('CREATE OR REPLACE FUNCTION')));
      // ... from before leased_by, too.
      await admin.query(`ALTER TABLE ${TEST_SCHEMA}.${table} DROP COLUMN leased_by`);
      // And a function an earlier release made under the same signature: replaced at start.
      // (PL/pgSQL resolves the column names at the first call, not at creation.)
      await admin.query(earlierRelease(ddl));
      const { bus, seen } = pgBus(table);
      bus.endpoint('orders').handle(PlaceOrder, async (m, ctx) => {
        await ctx.publish(OrderPlaced, { order: m.order, attempt: ctx.attempt });
      });
      await bus.start();
      await bus.send('orders', PlaceOrder, { order: 'upgraded' });
      await waitFor(() => seen.length === 1, { what: 'the event' });
      expect(seen).toEqual([{ order: 'upgraded', attempt: 1 }]);
      const { rows } = await admin.query(`SELECT obj_description(to_regprocedure($1), 'pg_proc') AS version`, [
        postgresOutboxWriteSignature(TEST_SCHEMA, table),
      ]);
      expect(rows[0]?.version).toBe(postgresOutboxWriteComment(POSTGRES_OUTBOX_WRITE_VERSION));
      // A table that is up to date, with the function of an earlier release alone: replaced too.
      await bus.stop();
      await admin.query(earlierRelease(ddl));
      const { bus: next } = pgBus(table);
      next.endpoint('orders').handle(PlaceOrder, async () => {});
      await next.start();
      const { rows: after } = await admin.query(`SELECT obj_description(to_regprocedure($1), 'pg_proc') AS version`, [
        postgresOutboxWriteSignature(TEST_SCHEMA, table),
      ]);
      expect(after[0]?.version).toBe(postgresOutboxWriteComment(POSTGRES_OUTBOX_WRITE_VERSION));
    } finally {
      await bus?.stop();
      bus = undefined;
      await admin.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${table}`);
      await admin.query(`DROP FUNCTION IF EXISTS ${TEST_SCHEMA}.${table}_write`);
      await admin.end();
    }
  });
});
