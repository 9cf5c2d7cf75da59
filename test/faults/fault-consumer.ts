import type { Logger } from 'pino';
import pino from 'pino';
import { z } from 'zod';
import {
  type Bus,
  createBus,
  createMemoryBroker,
  defineMessage,
  type EndpointOptions,
  memoryTransport,
  PermanentError,
  type Transport,
  type TransportDefinition,
} from '../../src/index.js';
import { type PostgresTransaction, postgresInbox } from '../../src/inbox/postgres/index.js';
import { systemClock } from '../../src/transport-core/index.js';
import { kafkaTransport } from '../../transports/kafka/index.js';
import { RabbitmqTransportConfigSchema, rabbitmqTransport } from '../../transports/rabbitmq/index.js';
import { testKafkaConfig } from '../integration/kafka/kafka-fixture.js';
import { trackedRabbitmq } from '../integration/rabbitmq/rabbitmq-test-kit.js';

/**
 * The consumer of the fault suite (issue 19), with no test framework in it: the fault bench builds
 * it in the test process, and `fixtures/fault-consumer-process.ts` in a child process that a test
 * kills. Each message writes its id into an effect table inside the inbox transaction (`ctx.tx`);
 * one in `poisonEvery` is poison: the handler rejects it (a business rule) after writing, so its
 * write is rolled back and it must end in the dead-letter queue as `permanent-failure`. With
 * `outbox`, a keyed credit also counts itself in its key and publishes a {@link Credited} through
 * the outbox (a poison credit's is rolled back with its write: it never goes out).
 */
export const Credit = defineMessage('faults.credit.v1', z.object({ n: z.number().int(), poison: z.boolean() }));
/**
 * With `outbox`, what the handler of a Credit publishes (`ctx.publish`, keyed as the credit is,
 * through the outbox): `seq` is the credit's number among the credits of its key applied so far,
 * counted in the same transaction (a counter row that also makes transactions of one key commit one
 * after the other), so that the outbox's per-key order is `seq` order.
 */
export const Credited = defineMessage(
  'faults.credited.v1',
  z.object({ n: z.number().int(), key: z.string(), seq: z.number().int() }),
);
export const APPLICATION_NAME = 'sluice-faults';
/** The consumer bus's `shutdown.timeoutMs`. */
export const SHUTDOWN_TIMEOUT_MS = 2_000;

/** Where the messages go through. A RabbitMQ `url` names a private node; without one, the shared node. */
export type FaultTransport =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'rabbitmq';
      readonly url?: string;
      readonly queueType?: 'classic' | 'quorum';
      /** The AMQP heartbeat (the transport's default: 15 s); a hung-broker test sets it lower. */
      readonly heartbeatSeconds?: number;
    }
  | {
      readonly kind: 'kafka';
      readonly brokers: readonly string[];
      /** kafkajs's request timeout (the transport's default: 30 s); a hung-broker test sets it lower. */
      readonly requestTimeoutMs?: number;
    };

export interface FaultConsumerOptions {
  readonly endpoint: string;
  readonly transport: FaultTransport;
  /** The PostgreSQL inbox's settings (`connectionString`, `schema`, `table`, timeouts). */
  readonly inbox: { readonly connectionString: string } & Record<string, unknown>;
  /** The effect table, schema-qualified when it is not in `public`. */
  readonly effects: string;
  readonly poisonEvery: number;
  /**
   * The handler also publishes one {@link Credited} per credit through the outbox (keyed credits),
   * counting them per key in `<effects>_counters`; these are the outbox's settings (timeouts, lease).
   */
  readonly outbox?: Record<string, unknown>;
  readonly endpointOptions?: EndpointOptions;
  /** False: a bus that only sends (the consumer runs in another process). */
  readonly consume?: boolean;
  readonly logger?: Logger;
}

export function isPoison(n: number, poisonEvery: number): boolean {
  return n % poisonEvery === poisonEvery - 1;
}

export interface FaultConsumer {
  readonly bus: Bus<PostgresTransaction>;
  /** A connected transport of the same broker, to read the dead-letter queue without consuming. */
  connectReader(): Promise<Transport>;
  /** Deletes what the test declared on a shared broker; nothing for a private one. */
  cleanup(): Promise<void>;
}

/** Builds (does not start) the bus of the fault suite's consumer. */
export function createFaultConsumer(options: FaultConsumerOptions): FaultConsumer {
  const logger = options.logger ?? pino({ level: 'silent' });
  const { definition, config, connectReader, cleanup } = transportOf(options.transport, logger);
  const bus = createBus(
    {
      service: 'faults',
      shutdown: { signals: [], timeoutMs: SHUTDOWN_TIMEOUT_MS },
      transport: config,
      inbox: { kind: 'postgres', poolSize: 8, ...options.inbox },
      ...(options.outbox ? { outbox: options.outbox } : {}),
    },
    { inbox: postgresInbox(), transports: [definition], logger },
  );
  if (options.consume !== false) {
    bus
      .endpoint(options.endpoint, {
        concurrency: 8,
        retry: { kind: 'exponential', retries: 5, initialMs: 50, factor: 2, maxMs: 1_000, jitter: 0.2 },
        dependencyBackoffMs: { initial: 200, factor: 2, max: 2_000 },
        ...options.endpointOptions,
        killSwitch: {
          restartDelayMs: { initial: 1_000, factor: 2, max: 4_000 },
          ...options.endpointOptions?.killSwitch,
        },
      })
      .handle(Credit, async (credit, ctx) => {
        const key = ctx.envelope.key;
        if (options.outbox && key !== undefined) {
          const { rows } = await ctx.tx.query<{ seq: number }>(
            `INSERT INTO ${options.effects}_counters AS c (entity_key, seq) VALUES ($1, 1)
             ON CONFLICT (entity_key) DO UPDATE SET seq = c.seq + 1 RETURNING c.seq`,
            [key],
          );
          const seq = Number(rows[0]?.seq);
          await ctx.tx.query(`INSERT INTO ${options.effects} (message_id, entity_key, seq) VALUES ($1, $2, $3)`, [
            ctx.messageId,
            key,
            seq,
          ]);
          await ctx.publish(Credited, { n: credit.n, key, seq }, { key });
        } else {
          await ctx.tx.query(`INSERT INTO ${options.effects} (message_id) VALUES ($1)`, [ctx.messageId]);
        }
        if (credit.poison) throw new PermanentError(`credit ${credit.n} is rejected by a business rule`);
      });
  }
  return { bus, connectReader, cleanup };
}

function transportOf(
  transport: FaultTransport,
  logger: Logger,
): {
  definition: TransportDefinition;
  config: { kind: string };
  connectReader(): Promise<Transport>;
  cleanup(): Promise<void>;
} {
  const none = async () => {};
  switch (transport.kind) {
    case 'memory': {
      const definition = memoryTransport({ broker: createMemoryBroker() }) as TransportDefinition;
      return {
        definition,
        config: { kind: 'memory' },
        connectReader: () => Promise.reject(new Error('the memory broker lives in its bus')),
        cleanup: none,
      };
    }
    case 'rabbitmq': {
      const common = {
        queueType: transport.queueType ?? 'quorum',
        reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
        publishTimeoutMs: 5_000,
        connectTimeoutMs: 2_000,
        ...(transport.heartbeatSeconds === undefined ? {} : { heartbeatSeconds: transport.heartbeatSeconds }),
      } as const;
      if (transport.url === undefined) {
        const rabbit = trackedRabbitmq(common);
        return {
          definition: rabbit.definition as TransportDefinition,
          config: rabbit.config,
          connectReader: () => rabbit.connect(logger),
          cleanup: () => rabbit.cleanup(),
        };
      }
      const config = { kind: 'rabbitmq', url: transport.url, ...common };
      const definition = rabbitmqTransport() as TransportDefinition;
      return {
        definition,
        config,
        async connectReader() {
          const reader = rabbitmqTransport().create(RabbitmqTransportConfigSchema.parse(config), {
            logger,
            clock: systemClock,
          });
          await reader.connect();
          return reader;
        },
        cleanup: none,
      };
    }
    case 'kafka': {
      const config = {
        ...testKafkaConfig,
        brokers: [...transport.brokers],
        numPartitions: 4,
        replicationFactor: 1,
        ...(transport.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: transport.requestTimeoutMs }),
      };
      return {
        definition: kafkaTransport() as TransportDefinition,
        config,
        connectReader: () => Promise.reject(new Error('read Kafka dead letters through the bus')),
        cleanup: none,
      };
    }
  }
}
