import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { expect } from 'vitest';
import type {
  Bus,
  BusEventName,
  DeadLetteredMessage,
  EndpointOptions,
  KillSwitchChange,
  Transport,
} from '../../src/index.js';
import { STOP_MARGIN_MS } from '../../src/bus/bus.js';
import type { PostgresTransaction } from '../../src/inbox/postgres/index.js';
import { type PrivatePostgres, startPrivatePostgres } from '../infra/postgres/private-postgres.js';
import { startTcpProxy, type TcpProxy } from '../infra/tcp-proxy.js';
import { deleteTopology } from '../integration/rabbitmq/rabbitmq-test-kit.js';
import { TEST_SCHEMA } from '../support/test-schema.js';
import { waitFor } from '../support/wait-for.js';
import {
  APPLICATION_NAME,
  Credit,
  createFaultConsumer,
  type FaultConsumerOptions,
  type FaultTransport,
  isPoison,
  SHUTDOWN_TIMEOUT_MS,
} from './fault-consumer.js';
import { OutboxSink } from './outbox-sink.js';

export { APPLICATION_NAME } from './fault-consumer.js';

/** How many keys the credits of an `outbox` bench are spread over. */
const OUTBOX_KEYS = 16;

/**
 * The fault suite's bench (issue 19): the consumer of `fault-consumer.ts` under load, on a transport
 * and with its PostgreSQL inbox and effect table on a database chosen by the test:
 * - `database: 'private'`: a private server of the test (`test/infra/postgres/private-postgres.ts`),
 *   optionally behind a TCP proxy, for faults of the database itself;
 * - `database: 'shared'`: the shared server on 127.0.0.1:5432, in the run's `TEST_SCHEMA` with
 *   tables of its own, for faults of something else (a broker, the consumer process).
 * At the end {@link expectEveryMessageOnce} counts every message: applied exactly once, or
 * dead-lettered as poison — never lost, never applied twice, never dead-lettered for the outage.
 */
export interface FaultBenchOptions {
  readonly transport: FaultTransport;
  readonly database?: 'private' | 'shared';
  /** Put a TCP proxy between the consumer and a private database (to black-hole it). */
  readonly proxy?: boolean;
  /** Extra inbox settings (timeouts). */
  readonly inbox?: Record<string, unknown>;
  readonly endpoint?: EndpointOptions;
  readonly poisonEvery?: number;
  /**
   * The handler also publishes one event per credit through the outbox (the outbox's settings
   * here), keyed credits are sent, and a sink endpoint of the bus records every event the broker
   * delivers ({@link FaultBench.sink}; counted by `outbox-sink.ts`).
   */
  readonly outbox?: Record<string, unknown>;
  /** False: this process only sends; the consumer runs elsewhere ({@link FaultBench.consumerOptions}). */
  readonly consume?: boolean;
}

export interface TimedChange {
  readonly name: BusEventName;
  readonly at: number;
  readonly change: KillSwitchChange;
}

interface EffectDatabase {
  readonly private: PrivatePostgres | undefined;
  /** The inbox's connection settings (`connectionString`, and `schema`/`table` on the shared server). */
  readonly inbox: { readonly connectionString: string } & Record<string, string>;
  readonly effects: string;
  /** The outbox's table (in the inbox's schema). */
  readonly outbox: string;
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  close(): Promise<void>;
}

export class FaultBench {
  readonly #closers: (() => Promise<unknown> | unknown)[] = [];
  readonly changes: TimedChange[] = [];
  readonly endpoint = `faults-${randomUUID().slice(0, 8)}`;
  readonly poisonEvery: number;
  bus!: Bus<PostgresTransaction>;
  /** With `outbox`: the events the broker delivered downstream. */
  sink: OutboxSink | undefined;
  #reader: (() => Promise<Transport>) | undefined;

  private constructor(
    readonly db: EffectDatabase,
    readonly proxy: TcpProxy | undefined,
    readonly options: FaultBenchOptions,
  ) {
    this.poisonEvery = options.poisonEvery ?? 97;
  }

  static async start(options: FaultBenchOptions): Promise<FaultBench> {
    const db = options.database === 'shared' ? await sharedDatabase() : await privateDatabase();
    let proxy: TcpProxy | undefined;
    try {
      if (options.proxy) {
        if (!db.private) throw new Error('a proxy goes in front of a private database');
        proxy = await startTcpProxy({ host: '127.0.0.1', port: db.private.port });
      }
    } catch (error) {
      await db.close();
      throw error;
    }
    const bench = new FaultBench(db, proxy, options);
    bench.#closers.push(() => db.close());
    if (proxy) bench.#closers.push(() => proxy.close());
    bench.#build();
    return bench;
  }

  /** The private database server (for its faults); throws on a bench on the shared one. */
  get pg(): PrivatePostgres {
    if (!this.db.private) throw new Error('this bench uses the shared database');
    return this.db.private;
  }

  /** What a consumer of this bench's endpoint is built from (in this process or another one). */
  consumerOptions(): FaultConsumerOptions {
    let inbox = this.db.inbox;
    if (this.proxy) {
      const url = new URL(inbox.connectionString);
      url.port = String(this.proxy.port);
      inbox = { ...inbox, connectionString: url.toString() };
    }
    return {
      endpoint: this.endpoint,
      transport: this.options.transport,
      inbox: { ...inbox, ...this.options.inbox },
      effects: this.db.effects,
      poisonEvery: this.poisonEvery,
      ...(this.options.outbox ? { outbox: { table: this.db.outbox, ...this.options.outbox } } : {}),
      ...(this.options.endpoint ? { endpointOptions: this.options.endpoint } : {}),
    };
  }

  #build(): void {
    const consumer = createFaultConsumer({ ...this.consumerOptions(), consume: this.options.consume !== false });
    const bus = consumer.bus;
    this.#reader = () => consumer.connectReader();
    if (this.options.consume !== false) {
      for (const name of [
        'killswitch.tripped',
        'killswitch.probing',
        'killswitch.closed',
        'killswitch.reset',
      ] as const) {
        bus.on(name, (change) => {
          this.changes.push({ name, at: Date.now(), change });
        });
      }
    }
    this.bus = bus;
    if (this.options.outbox && this.options.consume !== false) {
      this.sink = new OutboxSink(bus, `${this.endpoint}-events`);
    }
    this.#closers.push(() => consumer.cleanup());
    if (this.options.consume === false && this.options.transport.kind === 'rabbitmq' && !this.options.transport.url) {
      // Declared by the consumer processes on the shared node: deleted from here.
      const topology = { address: this.endpoint, endpoint: this.endpoint, messageTypes: [Credit.type] };
      this.#closers.push(() => deleteTopology([topology]));
    }
    this.#closers.push(() => bus.stop());
  }

  /**
   * `bus.stop()` while the broker hangs, counted. Starts the bus, sends `total` messages, and once
   * `settledFirst` were settled freezes the broker and stops the bus: it must return within
   * `shutdown.timeoutMs` + `STOP_MARGIN_MS`, as documented, with slack for a loaded box — a bound,
   * not a speed. Then thaws the broker and starts a new consumer of the same endpoint
   * ({@link restartConsumer}), which gets what the stopped one left unsettled; counts every message
   * ({@link expectEveryMessageOnce}); the kill switch must not have tripped. Returns how long the
   * stop took.
   */
  async stopWhileHung(
    broker: { freeze(): void; thaw(): void },
    { total, settledFirst = 100 }: { total: number; settledFirst?: number },
  ): Promise<number> {
    await this.bus.start();
    await this.produce(0, total);
    await waitFor(() => this.settled() >= settledFirst, { timeoutMs: 60_000, what: 'load' });
    broker.freeze();
    const stopping = Date.now();
    await this.bus.stop();
    const tookMs = Date.now() - stopping;
    expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + STOP_MARGIN_MS + 5_000);
    expect(this.bus.state).toBe('stopped');
    broker.thaw();
    await this.restartConsumer();
    await this.waitForAll(total, 120_000);
    await this.expectEveryMessageOnce(total);
    expect(this.trips()).toEqual([]);
    return tookMs;
  }

  /**
   * Builds the consumer's bus again and starts it, once the one before has stopped: the same
   * endpoint (consumer group, queue), inbox and effect table, as a consumer process restarted.
   */
  async restartConsumer(): Promise<void> {
    if (this.bus.state !== 'stopped') throw new Error(`restartConsumer: the bus is ${this.bus.state}, not stopped`);
    this.#build();
    await this.bus.start();
  }

  isPoison(n: number): boolean {
    return isPoison(n, this.poisonEvery);
  }

  id(n: number): string {
    return `${this.endpoint}-${n}`;
  }

  /** The key of credit `n` (sent keyed with `outbox` only). */
  key(n: number): string {
    return `k${n % OUTBOX_KEYS}`;
  }

  /**
   * Queues messages `from` .. `to - 1` through the broker. With `retry`, a send the broker refused
   * or could not confirm (it is down, or restarting) is sent again until it is taken, within
   * `retryForMs`: a producer that keeps going through an outage. A send that failed after the broker
   * took it is sent twice, with the same id: the inbox must apply it once.
   */
  async produce(from: number, to: number, { retry = false, retryForMs = 60_000 } = {}): Promise<{ resent: number }> {
    let resent = 0;
    for (let n = from; n < to; n++) {
      const deadline = Date.now() + retryForMs;
      for (;;) {
        try {
          await this.bus.send(
            this.endpoint,
            Credit,
            { n, poison: this.isPoison(n) },
            { id: this.id(n), ...(this.options.outbox ? { key: this.key(n) } : {}) },
          );
          break;
        } catch (error) {
          if (!retry || Date.now() > deadline) throw error;
          resent++;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    }
    return { resent };
  }

  /**
   * A broker fault under load, counted. Starts the bus and sends the first half of `total`; once
   * `settledFirst` messages were settled (the consumer is busy), `stop`s the broker and sends the
   * second half from that moment, so that every send of it goes through the outage (each one the
   * broker refused or could not confirm is sent again, same id); `start`s the broker again after
   * `downMs`. Then waits for every message and counts them ({@link expectEveryMessageOnce}). A
   * broker fault must not reach the handler path: no kill-switch trip, the consumer consuming at the
   * end. Prints what it saw.
   */
  async brokerFault(
    what: string,
    options: {
      total: number;
      settledFirst?: number;
      downMs: number;
      stop: () => Promise<void>;
      start: () => Promise<void>;
    },
  ): Promise<void> {
    const { total, settledFirst = 300, downMs } = options;
    const half = Math.floor(total / 2);
    await this.bus.start();
    const first = this.produce(0, half, { retry: true });
    await waitFor(() => this.settled() >= settledFirst, { timeoutMs: 60_000, what: 'load' });
    const down = Date.now();
    await options.stop();
    const producing = Promise.all([first, this.produce(half, total, { retry: true })]);
    // The outage's length is part of the scenario, not something measured.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, downMs - (Date.now() - down))));
    await options.start();
    const resent = (await producing).reduce((sum, r) => sum + r.resent, 0);
    await this.waitForAll(total, 120_000);
    const { dead, deadTwice } = await this.expectEveryMessageOnce(total);
    expect(this.trips()).toEqual([]);
    expect(this.bus.killSwitch(this.endpoint).state).toBe('closed');
    expect(this.bus.health().endpoints[this.endpoint]?.consumer).toMatchObject({ state: 'consuming' });
    console.info(
      `${what}: ${resent} sends retried, ${this.counters.skipped} redeliveries skipped as duplicates, ` +
        `${dead.length} dead letters (poison; ${deadTwice.length} dead-lettered twice)`,
    );
  }

  get counters() {
    const c = this.bus.health().endpoints[this.endpoint]?.counters;
    if (!c) throw new Error('the endpoint is not running');
    return c;
  }

  /** Settled for good so far: completed (or duplicate) and dead-lettered. */
  settled(): number {
    const c = this.counters;
    return c.completed + c.skipped + c.deadLettered;
  }

  /** Distinct messages applied so far (read from the effect table). */
  async applied(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(DISTINCT message_id)::int AS n FROM ${this.db.effects}`,
    );
    return rows[0]?.n ?? 0;
  }

  trips(from = 0, to = Number.POSITIVE_INFINITY): TimedChange[] {
    return this.changes.filter((c) => c.name === 'killswitch.tripped' && c.at >= from && c.at <= to);
  }

  /** The dead letters of the endpoint: through the bus when it consumes here, else read off the broker. */
  async deadLetters(): Promise<DeadLetteredMessage[]> {
    if (this.options.consume !== false) return this.bus.deadLetters(this.endpoint).peek(100_000);
    const reader = await (this.#reader as () => Promise<Transport>)();
    try {
      return await reader.deadLetters(this.endpoint).peek(100_000);
    } finally {
      await reader.close();
    }
  }

  /** Waits until every message 0 .. total - 1 is applied or dead-lettered (the database must be up). */
  async waitForAll(total: number, timeoutMs = 90_000): Promise<void> {
    const consuming = this.options.consume !== false;
    await waitFor(
      async () => {
        const applied = await this.applied();
        const dead = (await this.deadLetters()).length;
        return applied + dead >= total && (!consuming || this.bus.health().endpoints[this.endpoint]?.inFlight === 0);
      },
      {
        timeoutMs,
        intervalMs: consuming ? 200 : 1_000,
        what: () =>
          `all ${total} messages applied or dead-lettered; endpoint: ${JSON.stringify(
            this.bus.health().endpoints[this.endpoint],
          )}; changes: ${JSON.stringify(this.changes.map((c) => [c.name, c.change.reason]))}`,
      },
    );
  }

  /**
   * Counts every message: each applied exactly once in the effect table, or dead-lettered as
   * poison (`permanent-failure`). Nothing lost, nothing applied twice, nothing dead-lettered for
   * the outage. A dead letter is a copy published before the delivery is acknowledged (copy, then
   * remove: docs/retries-and-dead-letters.md), so a fault between the two leaves two dead letters
   * of one poison message; they are counted once, and returned in `deadTwice`.
   */
  async expectEveryMessageOnce(
    total: number,
  ): Promise<{ applied: number; dead: DeadLetteredMessage[]; deadTwice: string[] }> {
    const { rows } = await this.db.query<{ message_id: string; n: number }>(
      `SELECT message_id, count(*)::int AS n FROM ${this.db.effects} GROUP BY message_id`,
    );
    const applied = new Map(rows.map((r) => [r.message_id, r.n]));
    const dead = await this.deadLetters();
    const deadIds = new Map<string, string | undefined>();
    const deadTwice: string[] = [];
    for (const d of dead) {
      const id = d.fault?.messageId ?? d.messageId ?? '';
      if (deadIds.has(id)) deadTwice.push(id);
      // Every copy must carry the poison's reason: the last one read is checked below.
      if (deadIds.get(id) === undefined || d.fault?.reason !== 'permanent-failure') deadIds.set(id, d.fault?.reason);
    }
    const twice = rows.filter((r) => r.n > 1).map((r) => r.message_id);
    const lost: string[] = [];
    const wrong: string[] = [];
    for (let n = 0; n < total; n++) {
      const id = this.id(n);
      const isApplied = applied.has(id);
      const reason = deadIds.get(id);
      if (!isApplied && reason === undefined) lost.push(id);
      if (this.isPoison(n) ? isApplied || reason !== 'permanent-failure' : reason !== undefined) wrong.push(id);
    }
    const outageDeadLetters = dead.filter((d) => d.fault?.reason !== 'permanent-failure');
    expect({ lost, twice, wrong, outageDeadLetters: outageDeadLetters.map((d) => d.fault) }).toEqual({
      lost: [],
      twice: [],
      wrong: [],
      outageDeadLetters: [],
    });
    expect(applied.size + deadIds.size).toBe(total);
    return { applied: applied.size, dead, deadTwice };
  }

  async close(): Promise<void> {
    for (const close of this.#closers.splice(0).reverse()) {
      try {
        await close();
      } catch {
        // Closing what a fault left broken: the next closer still runs.
      }
    }
  }
}

/** The effect table (`seq`: the credit's number in its key, with `outbox`) and its per-key counters. */
function effectTables(effects: string): string {
  return `CREATE TABLE ${effects} (message_id text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
      entity_key text, seq integer);
    CREATE TABLE ${effects}_counters (entity_key text PRIMARY KEY, seq integer NOT NULL)`;
}

async function privateDatabase(): Promise<EffectDatabase> {
  const server = await startPrivatePostgres();
  try {
    await server.query(effectTables('effects'));
  } catch (error) {
    server.destroy();
    throw error;
  }
  return {
    private: server,
    inbox: { connectionString: server.url({ application_name: APPLICATION_NAME }) },
    effects: 'effects',
    outbox: 'sluice_outbox',
    query: (text, values) => server.query(text, values),
    close: async () => server.destroy(),
  };
}

/** Tables of its own in the run's schema on the shared server; dropped at the end. */
async function sharedDatabase(): Promise<EffectDatabase> {
  const connectionString = `postgres://postgres@127.0.0.1:5432/test?application_name=${APPLICATION_NAME}`;
  const pool = new pg.Pool({ connectionString, max: 2 });
  const suffix = randomUUID().slice(0, 8);
  const table = `fault_inbox_${suffix}`;
  const effects = `${TEST_SCHEMA}.fault_effects_${suffix}`;
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${TEST_SCHEMA}`);
  await pool.query(effectTables(effects));
  return {
    private: undefined,
    inbox: { connectionString, schema: TEST_SCHEMA, table },
    effects,
    outbox: `fault_outbox_${suffix}`,
    query: (text, values) => pool.query(text, values),
    async close() {
      // The inbox's own tables are named after `table`; drop what the store created with it.
      const { rows } = await pool.query<{ name: string }>(
        `SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 AND tablename LIKE $2`,
        [TEST_SCHEMA, `%${suffix}%`],
      );
      for (const { name } of rows) await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}."${name}" CASCADE`);
      await pool.end();
    },
  };
}
