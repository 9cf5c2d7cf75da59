import net from 'node:net';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  createBus,
  createMemoryBroker,
  DependencyError,
  defineMessage,
  type InboxEntry,
  type InboxStore,
  memoryTransport,
  TransactionRolledBackError,
} from '../../../src/index.js';
import { STOP_MARGIN_MS } from '../../../src/bus/bus.js';
import { type PostgresTransaction, postgresInbox } from '../../../src/inbox/postgres/index.js';
import { startTcpProxy, type TcpProxy } from '../../infra/tcp-proxy.js';
import { signal } from '../../support/signal.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { waitFor } from '../../support/wait-for.js';
import { PG_URL, postgresStore, testPool, uniqueTable } from './stores.js';

/**
 * The PostgreSQL inbox when its database fails (issue 19, items 1–3 and 5; issue 20, item 12),
 * over the shared server: the faults are made on this test's own connections only (its own
 * session settings, a TCP proxy in front of the server), never on the server.
 */
const silent = pino({ level: 'silent' });
const Credit = defineMessage('bank.credit.v1', z.object({ n: z.number().int(), swallow: z.boolean().default(false) }));
const pool = testPool();
const effects = uniqueTable('effects');

const entry = (messageId: string): InboxEntry => ({
  endpoint: 'ledger',
  messageId,
  messageType: Credit.type,
  key: undefined,
  occurredAt: '2026-11-22T10:00:00Z',
  receivedAt: new Date(),
  attempts: 1,
  envelopeJson: undefined,
});
const effectCount = async (id: string) =>
  Number((await pool.query(`SELECT count(*) AS n FROM ${TEST_SCHEMA}.${effects} WHERE id = $1`, [id])).rows[0].n);
const writeEffect = (tx: PostgresTransaction, id: string) =>
  tx.query(`INSERT INTO ${TEST_SCHEMA}.${effects} (id) VALUES ($1)`, [id]);

/** The proxy's URL for the shared test database. */
const viaProxy = (proxy: TcpProxy) => PG_URL.replace(':5432/', `:${proxy.port}/`);

const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close().catch(() => {});
});
beforeAll(async () => {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${TEST_SCHEMA}`);
  await pool.query(`CREATE TABLE ${TEST_SCHEMA}.${effects} (id text NOT NULL)`);
});
afterAll(async () => {
  await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${effects}`);
  await pool.end();
});

const store = (extra: Record<string, unknown> = {}, table = uniqueTable('inbox')): InboxStore<PostgresTransaction> => {
  const s = postgresStore(table, extra);
  closing.push(async () => {
    await s.close();
    await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${table}, ${TEST_SCHEMA}.${table}_versions`);
  });
  return s;
};
const proxy = async () => {
  const p = await startTcpProxy({ host: '127.0.0.1', port: 5432 });
  closing.push(() => p.close());
  return p;
};

describe('postgres inbox: a commit that did not commit', () => {
  it('fails the attempt when the handler swallowed a failed statement (COMMIT answered with ROLLBACK)', async () => {
    const s = store();
    await s.init();
    const attempt = s.runOnce(entry('swallowed'), async (tx) => {
      await writeEffect(tx, 'swallowed');
      await tx.query('SELECT 1 / 0').catch(() => {});
      return { result: 'returned normally' };
    });
    await expect(attempt).rejects.toBeInstanceOf(TransactionRolledBackError);
    expect(await effectCount('swallowed')).toBe(0);
    expect(await s.find('ledger', 'swallowed')).toBeUndefined();
    // The next attempt runs and commits.
    const again = await s.runOnce(entry('swallowed'), async (tx) => {
      await writeEffect(tx, 'swallowed');
      return { result: 'ok' };
    });
    expect(again).toEqual({ status: 'processed', value: 'ok' });
    expect(await effectCount('swallowed')).toBe(1);
  });

  it.each(['rerun', 'savepoint'] as const)(
    'with group commit (%s), only the swallowing handler fails; every other message commits once',
    async (isolation) => {
      const table = uniqueTable('inbox');
      const bus = createBus(
        {
          shutdown: { signals: [] },
          inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table },
        },
        { inbox: postgresInbox(), transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
      );
      closing.push(async () => {
        await bus.stop();
        await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${table}, ${TEST_SCHEMA}.${table}_versions`);
      });
      const prefix = `${isolation}-`;
      bus
        .endpoint('ledger', {
          concurrency: 20,
          retry: { kind: 'immediate', retries: 3 },
          groupCommit: { maxMessages: 20, maxWaitMs: 20, isolation },
        })
        .handle(Credit, async (credit, ctx) => {
          await writeEffect(ctx.tx, `${prefix}${credit.n}`);
          // Swallows a failed statement on its first attempt: the transaction is then aborted.
          if (credit.swallow && ctx.attempt === 1) await ctx.tx.query('SELECT 1 / 0').catch(() => {});
        });
      await bus.start();
      for (let n = 0; n < 40; n++) await bus.send('ledger', Credit, { n, swallow: n === 7 }, { id: `${prefix}${n}` });
      await waitFor(() => bus.health().endpoints.ledger?.counters.completed === 40, { timeoutMs: 20_000 });
      const { rows } = await pool.query(
        `SELECT id, count(*)::int AS n FROM ${TEST_SCHEMA}.${effects} WHERE id LIKE $1 GROUP BY id`,
        [`${prefix}%`],
      );
      expect(rows).toHaveLength(40);
      expect(rows.every((r: { n: number }) => r.n === 1)).toBe(true);
      expect(await bus.deadLetters('ledger').count()).toBe(0);
    },
  );
});

describe('postgres inbox: a connection that dies while checked out', () => {
  it('fails the attempt cleanly when the session is ended under the handler, and the pool recovers', async () => {
    // The server ends a session idle in a transaction past this; the pg client then emits 'error'
    // while it is checked out: unhandled, it would kill the process.
    const s = store({ idleInTransactionTimeoutMs: 200 });
    await s.init();
    const attempt = s.runOnce(entry('idle'), async (tx) => {
      await writeEffect(tx, 'idle');
      await new Promise((resolve) => setTimeout(resolve, 800));
      await writeEffect(tx, 'idle');
      return { result: 'never' };
    });
    const error = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TransactionRolledBackError);
    expect((error as Error).message).toMatch(/idleInTransactionTimeoutMs/);
    expect(await effectCount('idle')).toBe(0);
    expect(await s.runOnce(entry('after'), async () => ({ result: 1 }))).toEqual({ status: 'processed', value: 1 });
  });

  it('turns a reset connection into a dependency failure, and works again once the database is reachable', async () => {
    const p = await proxy();
    const s = store({ connectionString: viaProxy(p), connectTimeoutMs: 2_000 });
    await s.init();
    const inside = signal();
    const attempt = s.runOnce(entry('reset'), async (tx) => {
      inside.fire();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await writeEffect(tx, 'reset');
      return { result: 'never' };
    });
    await inside.wait;
    p.reset();
    await expect(attempt).rejects.toBeInstanceOf(DependencyError);
    await p.refuse();
    await expect(s.runOnce(entry('refused'), async () => ({ result: 1 }))).rejects.toMatchObject({
      name: 'DependencyError',
      dependency: 'inbox (postgres)',
    });
    await p.listen();
    expect(await s.runOnce(entry('reset'), async () => ({ result: 'now' }))).toEqual({
      status: 'processed',
      value: 'now',
    });
  });

  it("survives a termination that arrives with the new connection's ReadyForQuery (same socket read)", async () => {
    // pg_terminate_backend right after a connection's start-up: the FATAL can reach the client in
    // the read that completes the start-up, before the caller of `await pool.connect()` could
    // listen. A proxy makes that read on purpose.
    const fatal = await fatalAfterStartupProxy();
    closing.push(() => fatal.close());
    const table = uniqueTable('inbox');
    await store({}, table).init();
    const s = store({ connectionString: PG_URL.replace(':5432/', `:${fatal.port}/`), connectTimeoutMs: 2_000 }, table);
    await expect(s.runOnce(entry('terminated'), async () => ({ result: 'never' }))).rejects.toBeInstanceOf(
      DependencyError,
    );
    expect(fatal.injected()).toBe(1);
    // The next connection goes through untouched: the pool recovered.
    expect(await s.runOnce(entry('terminated'), async () => ({ result: 'now' }))).toEqual({
      status: 'processed',
      value: 'now',
    });
  });

  it("leaves a handler's own refused connection a handler failure, not the inbox's", async () => {
    const s = store();
    await s.init();
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const attempt = s.runOnce(entry('webhook'), async () => {
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect(closedPort, '127.0.0.1', () => resolve());
        socket.once('error', reject);
      });
      return { result: 'never' };
    });
    const error = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as { code?: string }).code).toBe('ECONNREFUSED');
    expect(error).not.toBeInstanceOf(DependencyError);
  });
});

describe('postgres inbox: a database that stops answering', () => {
  it('gives up on a statement with no answer, as a dependency failure, instead of hanging', async () => {
    const p = await proxy();
    const s = store({ connectionString: viaProxy(p), statementTimeoutMs: 300, connectTimeoutMs: 500 });
    await s.init();
    const inside = signal();
    const attempt = s.runOnce(entry('silent'), async (tx) => {
      inside.fire();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await writeEffect(tx, 'silent');
      return { result: 'never' };
    });
    await inside.wait;
    p.blackhole();
    await expect(attempt).rejects.toBeInstanceOf(DependencyError);
    // A new attempt cannot get a connection either: a dependency failure again, not a hang.
    await expect(s.runOnce(entry('silent-2'), async () => ({ result: 1 }))).rejects.toBeInstanceOf(DependencyError);
    // close() returns although the database never answers.
    await s.close();
  });

  it('lets bus.stop() return within shutdown.timeoutMs and its margin while a handler waits on the database', async () => {
    const p = await proxy();
    const table = uniqueTable('inbox');
    const timeoutMs = 500;
    const bus: Bus<PostgresTransaction> = createBus(
      {
        shutdown: { signals: [], timeoutMs },
        inbox: { kind: 'postgres', connectionString: viaProxy(p), schema: TEST_SCHEMA, table },
      },
      { inbox: postgresInbox(), transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    closing.push(() => pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${table}, ${TEST_SCHEMA}.${table}_versions`));
    const inside = signal();
    bus.endpoint('ledger').handle(Credit, async (credit, ctx) => {
      inside.fire();
      await new Promise((resolve) => setTimeout(resolve, 50));
      // With the default statement timeout, the client would wait 35 s for this answer.
      await writeEffect(ctx.tx, `stop-${credit.n}`);
    });
    await bus.start();
    await bus.send('ledger', Credit, { n: 1 });
    await inside.wait;
    p.blackhole();
    const started = Date.now();
    await bus.stop();
    // A bound, not a speed: without it stop() never returns (the test's own timeout fails it).
    expect(Date.now() - started).toBeLessThan(timeoutMs + STOP_MARGIN_MS + 5_000);
    expect(bus.state).toBe('stopped');
  });
});

describe('bus start-up while the inbox database is down', () => {
  it('waits for the database with readiness not ready, then starts once it answers', async () => {
    const p = await proxy();
    await p.refuse();
    const table = uniqueTable('inbox');
    const bus = createBus(
      {
        shutdown: { signals: [] },
        health: { enabled: true, port: 0 },
        inbox: { kind: 'postgres', connectionString: viaProxy(p), schema: TEST_SCHEMA, table, startupWaitMs: 60_000 },
      },
      { inbox: postgresInbox(), transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    closing.push(async () => {
      await bus.stop();
      await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${table}, ${TEST_SCHEMA}.${table}_versions`);
    });
    const handled: number[] = [];
    bus.endpoint('ledger').handle(Credit, async (credit) => {
      handled.push(credit.n);
    });
    let started = false;
    const starting = bus.start().then(() => {
      started = true;
    });
    await waitFor(() => bus.health().waitingFor !== undefined, { what: 'the bus to wait for the store' });
    expect(bus.health()).toMatchObject({
      state: 'starting',
      waitingFor: { dependency: 'inbox store (postgres)' },
    });
    expect(bus.health().waitingFor?.lastError).toMatch(/ECONNREFUSED/);
    // The health server answers meanwhile: alive, not ready.
    const url = bus.healthServer?.url ?? '';
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
    const ready = await fetch(`${url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not-ready', reasons: ['bus is starting', expect.any(String)] });
    expect(started).toBe(false);

    await p.listen();
    await starting;
    expect(bus.state).toBe('started');
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    await bus.send('ledger', Credit, { n: 1 });
    await waitFor(() => handled.length === 1);
  });

  it('fails start() clearly past startupWaitMs, closes what it opened, and stop() then just returns', async () => {
    const p = await proxy();
    await p.refuse();
    const bus = createBus(
      {
        shutdown: { signals: [] },
        inbox: {
          kind: 'postgres',
          connectionString: viaProxy(p),
          schema: TEST_SCHEMA,
          table: uniqueTable('inbox'),
          startupWaitMs: 600,
        },
      },
      { inbox: postgresInbox(), transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    bus.endpoint('ledger').handle(Credit, async () => {});
    const failure = await bus.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(DependencyError);
    expect((failure as Error).message).toMatch(
      /^inbox store \(postgres\) did not answer within 600 ms \(inbox\.startupWaitMs; \d+ tries\): /,
    );
    expect(bus.state).toBe('stopped');
    // try { await bus.start() } finally { await bus.stop() } must work.
    await bus.stop();
    await bus.stop();
    expect(bus.state).toBe('stopped');
  });

  it('lets stop() end the wait for the store', async () => {
    const p = await proxy();
    await p.refuse();
    const bus = createBus(
      {
        shutdown: { signals: [] },
        inbox: { kind: 'postgres', connectionString: viaProxy(p), schema: TEST_SCHEMA, table: uniqueTable('inbox') },
      },
      { inbox: postgresInbox(), transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    bus.endpoint('ledger').handle(Credit, async () => {});
    const starting = bus.start().then(
      () => 'started',
      (e: unknown) => (e as Error).name,
    );
    await waitFor(() => bus.health().waitingFor !== undefined);
    await bus.stop();
    expect(await starting).toBe('LifecycleError');
    expect(bus.state).toBe('stopped');
  });
});

/**
 * A proxy to the shared server that, on the first connection only, holds the server's start-up
 * answer until its ReadyForQuery, then writes it together with a FATAL 57P01 (what
 * `pg_terminate_backend` sends) in one write, and closes the connection.
 */
async function fatalAfterStartupProxy(): Promise<{ port: number; injected(): number; close(): Promise<void> }> {
  let injected = 0;
  let first = true;
  const sockets = new Set<net.Socket>();
  const fields = ['SFATAL', 'VFATAL', 'C57P01', 'Mterminating connection due to administrator command'];
  const body = Buffer.concat([...fields.map((f) => Buffer.from(`${f}\0`)), Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(body.length + 4, 1);
  const errorResponse = Buffer.concat([header, body]);
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: 5432 });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk) => upstream.write(chunk));
    const inject = first;
    first = false;
    let held = Buffer.alloc(0);
    upstream.on('data', (chunk) => {
      if (!inject) return void client.write(chunk);
      held = Buffer.concat([held, chunk]);
      // Walk the backend messages (type byte, then a length that counts itself) to a ReadyForQuery.
      for (let at = 0; at + 5 <= held.length; at += 1 + held.readInt32BE(at + 1)) {
        if (held[at] !== 0x5a /* Z */) continue;
        injected++;
        client.end(Buffer.concat([held, errorResponse]));
        upstream.destroy();
        return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    injected: () => injected,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
