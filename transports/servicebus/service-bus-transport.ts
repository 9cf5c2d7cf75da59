import { isServiceBusError, ServiceBusClient, type ServiceBusMessage, type ServiceBusSender } from '@azure/service-bus';
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
  TransportCapabilities,
  TransportState,
} from '../../src/transport-core/index.js';
import {
  ConnectionState,
  errorText,
  redactSecrets,
  secretsOf,
  TransportError,
} from '../../src/transport-core/index.js';
import { type ServiceBusEntityAdministration, sdkEntityAdministration } from './entity-administration.js';
import { EntityNaming } from './entity-naming.js';
import { toServiceBusMessage } from './message-mapping.js';
import type { ServiceBusTransportConfig } from './service-bus-config.js';
import { ServiceBusConsumer } from './service-bus-consumer.js';
import { ServiceBusDeadLetterQueue } from './service-bus-dead-letter-queue.js';
import { serviceBusCapabilities } from './service-bus-delivery.js';

export interface ServiceBusTransportDeps {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Used by `entities: 'create'`; defaults to the service's administration API. */
  readonly administration?: ServiceBusEntityAdministration;
}

/**
 * One connection (one `ServiceBusClient`) to a Service Bus namespace. Endpoints consume their queue;
 * publishes go to the topic of the message type, whose subscriptions auto-forward into the queues
 * of the endpoints handling that type. See docs/transports/servicebus.md.
 */
export class ServiceBusTransport implements Transport {
  readonly kind = 'servicebus';
  readonly capabilities: TransportCapabilities;
  readonly naming: EntityNaming;
  readonly #connection = new ConnectionState('Service Bus');
  #client: ServiceBusClient | undefined;
  #administration: ServiceBusEntityAdministration | undefined;
  readonly #senders = new Map<string, ServiceBusSender>();
  readonly #consumers = new Set<ServiceBusConsumer>();
  readonly #createdTopics = new Set<string>();
  /** The connection string's secrets, masked in every error text that could repeat them. */
  readonly #secrets: readonly string[];

  constructor(
    private readonly config: ServiceBusTransportConfig,
    private readonly deps: ServiceBusTransportDeps,
  ) {
    this.capabilities = serviceBusCapabilities(config.sessions);
    this.naming = new EntityNaming(config);
    this.#secrets = secretsOf(config.connectionString);
  }

  get state(): TransportState {
    return this.#connection.state;
  }

  /** Creates the SDK client; the SDK opens the AMQP connection on first use and reopens it when lost. */
  connect(): Promise<void> {
    return this.#connection.connect(async () => {
      try {
        this.#client = new ServiceBusClient(this.config.connectionString, {
          retryOptions: { maxRetries: this.config.maxRetries, timeoutInMs: this.config.operationTimeoutMs },
        });
      } catch (error) {
        // The SDK's parse errors may quote the connection string: never let the key through.
        const detail = redactSecrets(errorText(error), this.#secrets);
        throw new TransportError(`Service Bus connection string rejected: ${detail}`, { retryable: false });
      }
    });
  }

  #connected(): ServiceBusClient {
    this.#connection.assertConnected();
    return this.#client as ServiceBusClient;
  }

  #sender(entity: string): ServiceBusSender {
    let sender = this.#senders.get(entity);
    if (!sender) {
      sender = this.#connected().createSender(entity);
      this.#senders.set(entity, sender);
    }
    return sender;
  }

  /** With sessions, a message's session id is its key (its message id when it has none). */
  #toMessage(message: OutgoingMessage): ServiceBusMessage {
    return toServiceBusMessage(message, this.config.sessions ? (message.key ?? message.messageId) : undefined);
  }

  async #sendTo(entity: string, what: string, message: ServiceBusMessage): Promise<void> {
    try {
      await this.#sender(entity).sendMessages(message);
    } catch (error) {
      throw sendError(what, error, this.#secrets);
    }
  }

  /**
   * `verify`: checks the endpoint's queue, its skipped queue (when it has one), the topic of each
   * handled type and the endpoint's subscription on it exist, failing with a non-retryable
   * `TransportError` naming the first missing entity. `create`: creates what is missing (queues,
   * topics, auto-forwarding subscriptions).
   */
  async declare(topology: EndpointTopology): Promise<void> {
    const client = this.#connected();
    const subscription = this.naming.subscriptionFor(topology.endpoint);
    const queues =
      topology.skippedAddress === undefined ? [topology.address] : [topology.address, topology.skippedAddress];
    if (this.config.entities === 'create') {
      const admin = this.#admin();
      for (const queue of queues) {
        if (!(await admin.queueExists(queue))) {
          await admin.createQueue(queue, { requiresSession: this.config.sessions, ...this.config.createdQueues });
        }
      }
      for (const type of topology.messageTypes) {
        const topic = this.naming.topicFor(type);
        await this.#ensureTopic(topic);
        if (!(await admin.subscriptionExists(topic, subscription))) {
          await admin.createSubscription(topic, subscription, { forwardTo: topology.address });
        }
      }
      return;
    }
    for (const queue of queues) {
      await this.#verify(`queue "${queue}"`, () => client.createReceiver(queue).peekMessages(1));
    }
    for (const type of topology.messageTypes) {
      const topic = this.naming.topicFor(type);
      await this.#verify(`topic "${topic}" (message type ${type})`, () => this.#sender(topic).createMessageBatch());
      await this.#verify(
        `subscription "${topic}/Subscriptions/${subscription}" (forwarding to "${topology.address}")`,
        () => client.createReceiver(topic, subscription).peekMessages(1),
      );
    }
  }

  #admin(): ServiceBusEntityAdministration {
    this.#administration ??= this.deps.administration ?? sdkEntityAdministration(this.config.connectionString);
    return this.#administration;
  }

  async #ensureTopic(topic: string): Promise<void> {
    if (this.#createdTopics.has(topic)) return;
    const admin = this.#admin();
    if (!(await admin.topicExists(topic))) await admin.createTopic(topic);
    this.#createdTopics.add(topic);
  }

  async #verify(what: string, probe: () => Promise<unknown>): Promise<void> {
    try {
      await probe();
    } catch (error) {
      if (isServiceBusError(error) && error.code === 'MessagingEntityNotFound') {
        throw new TransportError(
          `Service Bus ${what} does not exist: create it (see docs/transports/servicebus.md) or set transport.entities: 'create'`,
          { retryable: false, cause: error },
        );
      }
      throw new TransportError(
        `checking Service Bus ${what} failed: ${redactSecrets(errorText(error), this.#secrets)}`,
        {
          cause: error,
        },
      );
    }
  }

  async consume(address: string, callback: DeliveryCallback, options: ConsumeOptions): Promise<Consumer> {
    const client = this.#connected();
    const consumer = new ServiceBusConsumer({
      ...this.deps,
      config: this.config,
      client,
      address,
      callback,
      consume: options,
      schedule: async (message, at) => {
        await this.#sender(address).scheduleMessages(message, at);
      },
      onClosed: (c) => this.#consumers.delete(c),
    });
    this.#consumers.add(consumer);
    consumer.start();
    return consumer;
  }

  async send(address: string, message: OutgoingMessage): Promise<void> {
    this.#connected();
    await this.#sendTo(address, `send to queue "${address}"`, this.#toMessage(message));
  }

  /**
   * To the topic of the message type. A topic without subscriptions drops the message, as pub/sub
   * does. With `entities: 'create'` a missing topic is created and the publish repeated once.
   */
  async publish(message: OutgoingMessage): Promise<void> {
    this.#connected();
    const topic = this.naming.topicFor(message.messageType);
    const sbMessage = this.#toMessage(message);
    try {
      await this.#sender(topic).sendMessages(sbMessage);
    } catch (error) {
      const missing = isServiceBusError(error) && error.code === 'MessagingEntityNotFound';
      if (!missing || this.config.entities !== 'create')
        throw sendError(`publish to topic "${topic}"`, error, this.#secrets);
      await this.#ensureTopic(topic);
      await this.#dropSender(topic);
      await this.#sendTo(topic, `publish to topic "${topic}"`, sbMessage);
    }
  }

  async #dropSender(entity: string): Promise<void> {
    const sender = this.#senders.get(entity);
    this.#senders.delete(entity);
    await sender?.close().catch(() => {});
  }

  deadLetters(address: string): DeadLetterQueue {
    return new ServiceBusDeadLetterQueue({
      client: this.#connected(),
      queue: address,
      sender: () => this.#sender(address),
      clock: this.deps.clock,
    });
  }

  /**
   * Closes the connection at once, settling nothing: the broker redelivers what was locked once the
   * locks expire (as when the process dies). Graceful draining is done before, by closing consumers.
   */
  async close(): Promise<void> {
    if (!this.#connection.close()) return;
    for (const consumer of this.#consumers) consumer.abandonOnConnectionLoss();
    this.#consumers.clear();
    this.#senders.clear();
    await this.#client?.close().catch((error: unknown) => {
      this.deps.logger.warn({ err: error }, 'closing the Service Bus client failed');
    });
    await this.#administration?.close?.();
  }
}

function sendError(what: string, error: unknown, secrets: readonly string[]): TransportError {
  const notFound = isServiceBusError(error) && error.code === 'MessagingEntityNotFound';
  return new TransportError(
    notFound ? `${what}: the entity does not exist` : `${what} failed: ${redactSecrets(errorText(error), secrets)}`,
    {
      retryable: !notFound,
      cause: error,
    },
  );
}
