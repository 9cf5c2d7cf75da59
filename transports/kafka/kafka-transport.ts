import type { KafkaConfig } from 'kafkajs';
import kafkajs from 'kafkajs';
import type { Logger } from 'pino';
import type {
  Clock,
  Consumer,
  ConsumeOptions,
  DeadLetterQueue,
  DeliveryCallback,
  EndpointTopology,
  OutgoingMessage,
  Transport,
  TransportState,
} from '../../src/transport-core/index.js';
import {
  ConnectionState,
  errorText,
  InvalidOutgoingMessageError,
  Mutex,
  SluiceHeader,
  TransportError,
  transportFailure,
} from '../../src/transport-core/index.js';
import type { KafkaTransportConfig } from './kafka-config.js';
import type { KafkaClient } from './kafka-client.js';
import { KafkaConsumer } from './kafka-consumer.js';
import { KafkaDeadLetterQueue } from './kafka-dead-letter-queue.js';
import { kafkaCapabilities } from './kafka-delivery.js';
import { isMessageTooLarge, KafkaHeader } from './kafka-header.js';
import { type EndpointTopics, TopicNaming } from './topic-naming.js';

// kafkajs is CommonJS: Node's ESM loader sees only its default export.
const { ConfigResourceTypes, Kafka, logLevel, Partitioners } = kafkajs;

/** pino's level for a kafkajs level (its log lines are routed to the transport's logger). */
const LEVEL_NAMES: Partial<Record<number, 'error' | 'warn' | 'info'>> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
};

/**
 * One Kafka client (a producer, an admin client, and a consumer-group member per consumed address).
 * See `docs/transports/kafka.md` for the topology and where Kafka's semantics differ from a queue's.
 */
export class KafkaTransport implements Transport {
  readonly kind = 'kafka';
  readonly capabilities = kafkaCapabilities;
  readonly #config: KafkaTransportConfig;
  readonly #logger: Logger;
  readonly #client: KafkaClient;
  readonly #endpoints = new Map<string, EndpointTopics>();
  readonly #consumers = new Set<KafkaConsumer>();
  readonly #created = new Set<string>();
  readonly #locks = new Map<string, Mutex>();
  #defaults: Promise<{ partitions: number; replication: number }> | undefined;
  readonly #connection = new ConnectionState('kafka');

  constructor(config: KafkaTransportConfig, deps: { logger: Logger; clock: Clock }) {
    this.#config = config;
    this.#logger = deps.logger;
    const log = deps.logger.child({ client: 'kafkajs' });
    const kafkaConfig: KafkaConfig = {
      clientId: config.clientId,
      brokers: config.brokers,
      connectionTimeout: config.connectionTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      // The config names kafkajs's own levels, in lower case.
      logLevel: logLevel[config.clientLogLevel.toUpperCase() as Uppercase<KafkaTransportConfig['clientLogLevel']>],
      // Route kafkajs logs to pino; kafkajs never logs SASL credentials.
      logCreator: () => (entry) => {
        const { message, ...fields } = entry.log;
        log[LEVEL_NAMES[Math.max(entry.level, logLevel.ERROR)] ?? 'debug'](
          { namespace: entry.namespace, ...fields },
          message,
        );
      },
    };
    if (config.ssl !== undefined) kafkaConfig.ssl = config.ssl;
    if (config.sasl) kafkaConfig.sasl = { ...config.sasl } as KafkaConfig['sasl'];
    const kafka = new Kafka(kafkaConfig);
    this.#client = {
      kafka,
      producer: kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner }),
      admin: kafka.admin(),
      clock: deps.clock,
      config,
      naming: new TopicNaming(config),
    };
  }

  get state(): TransportState {
    return this.#connection.state;
  }

  connect(): Promise<void> {
    return this.#connection.connect(async () => {
      try {
        await Promise.all([this.#client.producer.connect(), this.#client.admin.connect()]);
        // kafkajs counts a broker whose socket is open as connected even when its first request
        // timed out (a hung broker, a port that accepts and never answers): ask the cluster once,
        // so that start fails here, naming the brokers, rather than at the first declare.
        await this.#client.admin.describeCluster();
      } catch (error) {
        throw new TransportError(`cannot connect to kafka at ${this.#config.brokers.join(',')}: ${errorText(error)}`, {
          cause: error,
        });
      }
    });
  }

  /**
   * Creates the endpoint's input, retry and dead-letter topics, its skipped topic (the input topic of
   * its skipped address) and the topics of its message types (idempotent: existing topics are kept as
   * they are), and remembers which topics the endpoint's group subscribes to.
   */
  async declare(topology: EndpointTopology): Promise<void> {
    this.#connection.assertConnected();
    const topics = this.#client.naming.endpoint(
      topology.address,
      this.#client.naming.group(topology.endpoint),
      topology.messageTypes,
    );
    const skipped =
      topology.skippedAddress === undefined ? [] : [this.#client.naming.inputTopic(topology.skippedAddress)];
    await this.#createTopics([topics.input, topics.retry, topics.deadLetter, ...skipped, ...topics.subscriptions]);
    this.#endpoints.set(topology.address, topics);
  }

  async #createTopics(names: string[]): Promise<void> {
    const unknown = names.filter((t) => !this.#created.has(t));
    if (unknown.length === 0) return;
    try {
      await this.#createUnknown(unknown);
    } catch (error) {
      // kafkajs's own errors ("Broker not connected", a request timeout) become a TransportError.
      throw transportFailure(`checking or creating topics ${unknown.join(', ')}`, error);
    }
  }

  async #createUnknown(unknown: string[]): Promise<void> {
    // Asked first: creating a topic that exists makes kafkajs log the broker's refusal at ERROR.
    const present = new Set(await this.#client.admin.listTopics());
    for (const t of unknown) if (present.has(t)) this.#created.add(t);
    const missing = unknown.filter((t) => !present.has(t));
    if (missing.length === 0) return;
    const { partitions, replication } = await this.#topicDefaults();
    try {
      await this.#client.admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: replication })),
      });
    } catch (error) {
      // kafkajs reports TOPIC_ALREADY_EXISTS among others; a topic that now exists is what we wanted.
      const existing = new Set(await this.#client.admin.listTopics());
      if (!missing.every((t) => existing.has(t))) {
        throw new TransportError(`cannot create topics ${missing.join(', ')}`, { cause: error });
      }
    }
    for (const t of missing) this.#created.add(t);
  }

  /** Partitions and replication for new topics; -1 reads the broker's defaults once. */
  #topicDefaults(): Promise<{ partitions: number; replication: number }> {
    const { numPartitions, replicationFactor } = this.#config;
    if (numPartitions > 0 && replicationFactor > 0) {
      return Promise.resolve({ partitions: numPartitions, replication: replicationFactor });
    }
    this.#defaults ??= (async () => {
      const cluster = await this.#client.admin.describeCluster();
      const broker = String(cluster.controller ?? cluster.brokers[0]?.nodeId ?? 1);
      const described = await this.#client.admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: ConfigResourceTypes.BROKER,
            name: broker,
            configNames: ['num.partitions', 'default.replication.factor'],
          },
        ],
      });
      const entries = described.resources[0]?.configEntries ?? [];
      const value = (name: string) => Number(entries.find((e) => e.configName === name)?.configValue ?? '1') || 1;
      return {
        partitions: numPartitions > 0 ? numPartitions : value('num.partitions'),
        replication: replicationFactor > 0 ? replicationFactor : value('default.replication.factor'),
      };
    })();
    return this.#defaults;
  }

  #topicsOf(address: string): EndpointTopics {
    // Without a declare in this process the group is the address and only input + retry are read.
    return (
      this.#endpoints.get(address) ?? this.#client.naming.endpoint(address, this.#client.naming.group(address), [])
    );
  }

  async consume(address: string, callback: DeliveryCallback, options: ConsumeOptions): Promise<Consumer> {
    this.#connection.assertConnected();
    const topics = this.#topicsOf(address);
    if (!this.#endpoints.has(address)) await this.#createTopics([topics.input, topics.retry, topics.deadLetter]);
    const consumer = new KafkaConsumer({
      ...this.#client,
      logger: this.#logger.child({ address, group: topics.group }),
      topics,
      callback,
      options: { ...options, prefetch: Math.max(1, options.prefetch) },
      onClosed: (c) => this.#consumers.delete(c),
    });
    this.#consumers.add(consumer);
    try {
      await consumer.start();
    } catch (error) {
      this.#consumers.delete(consumer);
      await consumer.close().catch(() => {});
      throw new TransportError(`cannot consume ${topics.input} as group ${topics.group}`, { cause: error });
    }
    return consumer;
  }

  async send(address: string, message: OutgoingMessage): Promise<void> {
    this.#connection.assertConnected();
    await this.#produce(this.#client.naming.inputTopic(address), message);
  }

  async publish(message: OutgoingMessage): Promise<void> {
    this.#connection.assertConnected();
    await this.#produce(this.#client.naming.typeTopic(message.messageType), message);
  }

  async #produce(topic: string, message: OutgoingMessage): Promise<void> {
    const headers: Record<string, string> = {
      ...message.headers,
      [KafkaHeader.messageId]: message.messageId,
      [SluiceHeader.messageType]: message.messageType,
      [KafkaHeader.contentType]: message.contentType,
    };
    try {
      await this.#client.producer.send({
        topic,
        acks: -1,
        messages: [{ key: message.key ?? null, value: message.body, headers }],
      });
    } catch (error) {
      // Kafka has no limit on the message id (a header) or the key; its one limit is the record size.
      if (isMessageTooLarge(error)) {
        throw new InvalidOutgoingMessageError(
          `cannot produce ${message.messageId} to ${topic}: the record (${message.body.length} bytes of body) is larger ` +
            `than the topic accepts (max.message.bytes); nothing was sent`,
          { cause: error },
        );
      }
      throw new TransportError(`cannot produce to ${topic}`, { cause: error });
    }
  }

  deadLetters(address: string): DeadLetterQueue {
    return new KafkaDeadLetterQueue({
      ...this.#client,
      topics: this.#topicsOf(address),
      lock: (name, fn) => this.#lock(name, fn),
    });
  }

  #lock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const mutex = this.#locks.get(name) ?? new Mutex();
    this.#locks.set(name, mutex);
    return mutex.run(fn);
  }

  /**
   * Closes at once, as a crash would: consumers commit only what is already settled and leave their
   * groups; unsettled deliveries are redelivered to the next owner of their partition.
   */
  async close(): Promise<void> {
    if (!this.#connection.close()) return;
    await Promise.allSettled([...this.#consumers].map((c) => c.close()));
    this.#consumers.clear();
    await Promise.allSettled([this.#client.producer.disconnect(), this.#client.admin.disconnect()]);
  }
}
