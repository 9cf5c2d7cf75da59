// What every run of bench/outbox.ts shares: the servers, schema and tables, the two message contracts,
// the input queue filled before anything consumes, the sink queue that counts the events (each checked
// exactly once), the bus the Sluice runs use, and the CPU per message recorded by mode.
import amqp from 'amqplib';
import type pg from 'pg';
import pino from 'pino';
import { z } from 'zod';
import {
  type Bus,
  cloudEventsCodec,
  createBus,
  createEnvelope,
  defineMessage,
  type TransportDefinition,
} from '../src/index.js';
import { postgresInbox, type PostgresTransaction } from '../src/inbox/postgres/index.js';
import { systemClock, type Transport } from '../src/transport-core/index.js';
import { rabbitmqTransport } from '../transports/rabbitmq/index.js';
import { deleteTopology } from '../test/integration/rabbitmq/rabbitmq-test-kit.js';
import { cpuPerMessage, type CpuSample, sampleCpu } from './server-cpu.js';

export const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
export const SCHEMA = 'sluice_bench';
export const POOL = 8;
/** Batch modes: messages per batch, and the prefetch that keeps several batches in flight. */
export const BATCH_SIZE = 100;
export const BATCH_PREFETCH = 1_000;
export const Charge = defineMessage('bench.outbox.charge.v1', z.object({ account: z.string(), amount: z.number() }));
export const Charged = defineMessage('bench.outbox.charged.v1', z.object({ account: z.string(), amount: z.number() }));
export const silent = pino({ level: 'silent' });
export const suffix = () => Math.random().toString(36).slice(2, 8);
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Drops and recreates the bench's tables (the bus creates its inbox and outbox tables again). */
export async function resetTables(admin: pg.Pool): Promise<void> {
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
  await admin.query(`DROP TABLE IF EXISTS ${SCHEMA}.ob_inbox, ${SCHEMA}.ob_inbox_versions, ${SCHEMA}.ob_outbox,
    ${SCHEMA}.ob_effects`);
  await admin.query(
    `CREATE TABLE ${SCHEMA}.ob_effects (message_id text NOT NULL, account text NOT NULL, amount numeric NOT NULL)`,
  );
}

/** `total` charges over `keys` accounts, each keyed by its account. */
export const envelopes = (total: number, keys: number) =>
  Array.from({ length: total }, (_, n) =>
    createEnvelope(Charge.type, 'bench', { account: `a${n % keys}`, amount: 1 }, { key: `a${n % keys}` }),
  );
export type Charges = ReturnType<typeof envelopes>;

/** A RabbitMQ transport of its own, connected: to declare queues and send without a bus. */
async function connectRabbitmq(): Promise<Transport> {
  const definition = rabbitmqTransport();
  const transport = definition.create(definition.configSchema.parse({ kind: 'rabbitmq' }), {
    logger: silent,
    clock: systemClock,
  });
  await transport.connect();
  return transport;
}

/** Puts every message on `queue` (declared as an endpoint of Charge) before anything consumes. */
export async function prefill(queue: string, batch: Charges): Promise<void> {
  const transport = await connectRabbitmq();
  await transport.declare({ address: queue, endpoint: queue, messageTypes: [Charge.type] });
  const messages = batch.map((env) => ({
    messageId: env.id,
    body: cloudEventsCodec.encode(env),
    headers: {},
    contentType: cloudEventsCodec.contentType,
    key: env.key,
    messageType: Charge.type,
  }));
  for (let i = 0; i < messages.length; i += 500) {
    await Promise.all(messages.slice(i, i + 500).map((m) => transport.send(queue, m)));
  }
  await transport.close();
}

/**
 * Before a throughput run: resets the tables, declares the sink and fills a new input queue named
 * `<prefix>-<random>` with the run's messages.
 */
export async function prepare(run: ModeRun, prefix: string): Promise<{ queue: string; out: Sink }> {
  await resetTables(run.admin);
  const queue = `${prefix}-${suffix()}`;
  const out = await sink();
  await prefill(queue, run.batch);
  return { queue, out };
}

/** Deletes an input queue filled by `prefill`. */
export const removeInput = (queue: string) =>
  deleteTopology([{ address: queue, endpoint: queue, messageTypes: [Charge.type] }]);

export interface Sink {
  readonly queue: string;
  count(): Promise<number>;
  remove(): Promise<void>;
}

/** Declares a queue bound to Charged's exchange (what a subscriber would do); counts it at the end. */
export async function sink(): Promise<Sink> {
  const queue = `bench-outbox-sink-${suffix()}`;
  const transport = await connectRabbitmq();
  await transport.declare({ address: queue, endpoint: queue, messageTypes: [Charged.type] });
  await transport.close();
  return {
    queue,
    count: async () => {
      const connection = await amqp.connect(AMQP_URL);
      const channel = await connection.createChannel();
      const { messageCount } = await channel.checkQueue(queue);
      await connection.close();
      return messageCount;
    },
    remove: () => deleteTopology([{ address: queue, endpoint: queue, messageTypes: [Charged.type] }]),
  };
}

/** Checks that the sink holds exactly `total` events (every event once), then removes it. */
export async function check(out: Sink, what: string, total: number): Promise<void> {
  // Confirmed publishes are on the queue; give the broker a moment to count the last ones.
  let n = 0;
  for (let i = 0; i < 50 && n < total; i++) {
    n = await out.count();
    if (n < total) await new Promise((r) => setTimeout(r, 100));
  }
  if (n !== total) throw new Error(`${what}: ${n} events on the sink queue, expected exactly ${total}`);
  await out.remove();
}

/** A promise and the function that resolves it: a run waits on it until its last message is done. */
export function latch(): { done: Promise<void>; open: () => void } {
  let open!: () => void;
  const done = new Promise<void>((r) => {
    open = r;
  });
  return { done, open };
}

/** The bus of the Sluice runs on the bench's inbox and outbox tables; `extra` overrides its config. */
export function sluiceBus(
  extra: object = {},
  transport: TransportDefinition = rabbitmqTransport(),
): Bus<PostgresTransaction> {
  return createBus(
    {
      shutdown: { signals: [] },
      transport: { kind: 'rabbitmq' },
      inbox: { kind: 'postgres', connectionString: PG_URL, schema: SCHEMA, table: 'ob_inbox', poolSize: POOL },
      outbox: { table: 'ob_outbox', retentionMs: 0 },
      ...extra,
    },
    { inbox: postgresInbox(), transports: [transport], logger: silent },
  );
}

/** The servers whose CPU per message is reported beside the rates (on a busy box, the steadier figure). */
const SERVERS = ['postgres', 'beam.smp'] as const;

/** CPU µs per message of each run, by mode: this process (`node`), `postgres` and `beam.smp`. */
export class CpuByMode {
  private readonly byMode = new Map<string, Record<string, number>[]>();

  /** `messages`: how many messages each run handles. */
  constructor(private readonly messages: number) {}

  /** The CPU used so far; pass it to `record` when the run ends. */
  start(): CpuSample {
    return sampleCpu(SERVERS);
  }

  record(mode: string, before: CpuSample): void {
    const list = this.byMode.get(mode) ?? [];
    list.push(cpuPerMessage(before, sampleCpu(SERVERS), this.messages));
    this.byMode.set(mode, list);
  }

  samples(mode: string): Record<string, number>[] {
    return this.byMode.get(mode) ?? [];
  }
}

/** What a throughput run needs: the admin pool (to reset the tables), the messages, the CPU record. */
export interface ModeRun {
  readonly admin: pg.Pool;
  readonly batch: Charges;
  readonly cpu: CpuByMode;
}
