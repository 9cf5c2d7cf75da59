import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { expect } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  type BusEventName,
  createBus,
  createMemoryBroker,
  type DeadLetteredMessage,
  defineMessage,
  type EndpointOptions,
  type KillSwitchChange,
  memoryTransport,
  PermanentError,
  type TransportDefinition,
} from '../../src/index.js';
import { type PostgresTransaction, postgresInbox } from '../../src/inbox/postgres/index.js';
import { type PrivatePostgres, startPrivatePostgres } from '../infra/postgres/private-postgres.js';
import { startTcpProxy, type TcpProxy } from '../infra/tcp-proxy.js';
import { trackedRabbitmq } from '../integration/rabbitmq/rabbitmq-test-kit.js';
import { waitFor } from '../support/wait-for.js';

/**
 * A consumer with a PostgreSQL inbox on a private server, under load, for scripted faults of that
 * server (issue 19's fault suite). Each message writes its id into an effect table inside the
 * inbox transaction; one in `poisonEvery` is poison (the handler rejects it after writing). At the
 * end {@link expectEveryMessageOnce} counts every message: applied exactly once, or dead-lettered
 * as poison — never lost, never applied twice, never dead-lettered because of the outage.
 */
export const Credit = defineMessage('faults.credit.v1', z.object({ n: z.number().int(), poison: z.boolean() }));
export const APPLICATION_NAME = 'sluice-faults';
const silent = pino({ level: 'silent' });

export interface FaultBenchOptions {
  readonly transport: 'memory' | 'rabbitmq';
  /** Put a TCP proxy between the consumer and the database (to black-hole it). */
  readonly proxy?: boolean;
  /** Extra inbox settings (timeouts). */
  readonly inbox?: Record<string, unknown>;
  readonly endpoint?: EndpointOptions;
  readonly poisonEvery?: number;
}

export interface TimedChange {
  readonly name: BusEventName;
  readonly at: number;
  readonly change: KillSwitchChange;
}

export class PostgresFaultBench {
  readonly #closers: (() => Promise<unknown> | unknown)[] = [];
  readonly changes: TimedChange[] = [];
  readonly endpoint = `faults-${randomUUID().slice(0, 8)}`;
  readonly poisonEvery: number;
  bus!: Bus<PostgresTransaction>;

  private constructor(
    readonly pg: PrivatePostgres,
    readonly proxy: TcpProxy | undefined,
    options: FaultBenchOptions,
  ) {
    this.poisonEvery = options.poisonEvery ?? 97;
  }

  static async start(options: FaultBenchOptions): Promise<PostgresFaultBench> {
    const pg = await startPrivatePostgres();
    let proxy: TcpProxy | undefined;
    try {
      await pg.query('CREATE TABLE effects (message_id text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
      if (options.proxy) proxy = await startTcpProxy({ host: '127.0.0.1', port: pg.port });
    } catch (error) {
      pg.destroy();
      throw error;
    }
    const bench = new PostgresFaultBench(pg, proxy, options);
    bench.#closers.push(() => pg.destroy());
    if (proxy) bench.#closers.push(() => proxy.close());
    bench.#build(options);
    return bench;
  }

  #build(options: FaultBenchOptions): void {
    const url = new URL(this.pg.url({ application_name: APPLICATION_NAME }));
    if (this.proxy) url.port = String(this.proxy.port);
    let transport: TransportDefinition = memoryTransport({ broker: createMemoryBroker() });
    let transportConfig: { kind: string } = { kind: 'memory' };
    if (options.transport === 'rabbitmq') {
      const rabbit = trackedRabbitmq();
      transport = rabbit.definition as TransportDefinition;
      transportConfig = rabbit.config;
      this.#closers.push(() => rabbit.cleanup());
    }
    const bus = createBus(
      {
        shutdown: { signals: [], timeoutMs: 2_000 },
        transport: transportConfig,
        inbox: { kind: 'postgres', connectionString: url.toString(), poolSize: 8, ...options.inbox },
      },
      { inbox: postgresInbox(), transports: [transport], logger: silent },
    );
    bus
      .endpoint(this.endpoint, {
        concurrency: 8,
        retry: { kind: 'exponential', retries: 5, initialMs: 50, factor: 2, maxMs: 1_000, jitter: 0.2 },
        dependencyBackoffMs: { initial: 200, factor: 2, max: 2_000 },
        ...options.endpoint,
        killSwitch: { restartDelayMs: { initial: 1_000, factor: 2, max: 4_000 }, ...options.endpoint?.killSwitch },
      })
      .handle(Credit, async (credit, ctx) => {
        await ctx.tx.query('INSERT INTO effects (message_id) VALUES ($1)', [ctx.messageId]);
        if (credit.poison) throw new PermanentError(`credit ${credit.n} is rejected by a business rule`);
      });
    for (const name of ['killswitch.tripped', 'killswitch.probing', 'killswitch.closed', 'killswitch.reset'] as const) {
      bus.on(name, (change) => {
        this.changes.push({ name, at: Date.now(), change });
      });
    }
    this.bus = bus;
    this.#closers.push(() => bus.stop());
  }

  isPoison(n: number): boolean {
    return n % this.poisonEvery === this.poisonEvery - 1;
  }

  id(n: number): string {
    return `${this.endpoint}-${n}`;
  }

  /** Queues messages `from` .. `to - 1` (through the broker; the consumer may or may not run). */
  async produce(from: number, to: number): Promise<void> {
    for (let n = from; n < to; n++) {
      await this.bus.send(this.endpoint, Credit, { n, poison: this.isPoison(n) }, { id: this.id(n) });
    }
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

  trips(from = 0, to = Number.POSITIVE_INFINITY): TimedChange[] {
    return this.changes.filter((c) => c.name === 'killswitch.tripped' && c.at >= from && c.at <= to);
  }

  /** Waits until every message 0 .. total - 1 is applied or dead-lettered (the database must be up). */
  async waitForAll(total: number, timeoutMs = 90_000): Promise<void> {
    await waitFor(
      async () => {
        const { rows } = await this.pg.query<{ n: number }>('SELECT count(DISTINCT message_id)::int AS n FROM effects');
        const dead = await this.bus.deadLetters(this.endpoint).count();
        return (rows[0]?.n ?? 0) + dead >= total && this.bus.health().endpoints[this.endpoint]?.inFlight === 0;
      },
      {
        timeoutMs,
        intervalMs: 200,
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
   * the outage.
   */
  async expectEveryMessageOnce(total: number): Promise<{ applied: number; dead: DeadLetteredMessage[] }> {
    const { rows } = await this.pg.query<{ message_id: string; n: number }>(
      'SELECT message_id, count(*)::int AS n FROM effects GROUP BY message_id',
    );
    const applied = new Map(rows.map((r) => [r.message_id, r.n]));
    const dead = await this.bus.deadLetters(this.endpoint).peek(100_000);
    const deadIds = new Map(dead.map((d) => [d.fault?.messageId ?? d.messageId, d.fault?.reason]));
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
    expect(applied.size + dead.length).toBe(total);
    return { applied: applied.size, dead };
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
