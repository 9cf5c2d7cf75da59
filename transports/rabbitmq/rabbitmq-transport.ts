import type { Channel, ChannelModel, Options } from 'amqplib';
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
import { errorText, TransportError, withTimeout } from '../../src/transport-core/index.js';
import { assertFitsAmqp } from './amqp-limits.js';
import { ChannelBudget, MAX_SHORT_LIVED_CHANNELS, openShortLived } from './channel-budget.js';
import { ConfirmLostError, ConfirmPublisher, type PublishTarget, UnroutableError } from './confirm-publisher.js';
import { DeclaredOnce } from './declared-once.js';
import type { RabbitmqTransportConfig } from './rabbitmq-config.js';
import { RabbitmqConnection } from './rabbitmq-connection.js';
import { RabbitmqConsumer } from './rabbitmq-consumer.js';
import { RabbitmqDeadLetterQueue } from './rabbitmq-dead-letter-queue.js';
import type { SettlementRoutes } from './rabbitmq-delivery.js';
import {
  DELAY_QUEUE_REDECLARE_MS,
  declareDelayQueue,
  declareEndpoint,
  declareExchange,
  delayBucketMs,
  delayQueueName,
  exchangeFor,
} from './topology.js';

/** Capabilities by queue type: quorum queues count redeliveries themselves (`x-delivery-count`). */
export function rabbitmqCapabilities(queueType: 'quorum' | 'classic'): TransportCapabilities {
  return {
    nativeDelay: false,
    nativeDeadLetter: false,
    deliveryCount: queueType === 'quorum' ? 'native' : 'header',
    ordering: 'none',
    durable: true,
  };
}

/**
 * The RabbitMQ transport over one amqplib connection. Topology (see docs/transports/rabbitmq.md):
 * a durable queue per endpoint, `<queue>.dlq`, `<queue>.delay.<ms>` delay queues, and a fanout
 * exchange per message type. Sends and publishes resolve once the broker confirmed them; while the
 * connection is being recovered they wait up to `publishTimeoutMs`, then fail with `TransportError`.
 * After a connection loss it reconnects with backoff, re-declares every declared endpoint and
 * reopens every consumer (paused ones stay paused).
 *
 * Channels: one per consumer, one confirm channel for publishing, and at most
 * {@link MAX_SHORT_LIVED_CHANNELS} short-lived ones at a time (declarations, dead-letter reads);
 * further callers wait their turn within their deadline. Each exchange and delay queue is declared
 * once per connection: concurrent first publishes of a type share one declaration.
 */
export class RabbitmqTransport implements Transport {
  readonly kind = 'rabbitmq';
  readonly capabilities: TransportCapabilities;
  readonly #connection: RabbitmqConnection;
  readonly #publisher: ConfirmPublisher;
  readonly #topologies = new Map<string, EndpointTopology>();
  readonly #consumers = new Set<RabbitmqConsumer>();
  readonly #channels: ChannelBudget;
  /** Publish exchanges declared, per connection. */
  readonly #exchanges: DeclaredOnce;
  /** Delay queues declared, per connection; re-declared after a while (renews the `x-expires` lease). */
  readonly #delayQueues: DeclaredOnce;

  constructor(
    private readonly config: RabbitmqTransportConfig,
    private readonly deps: { logger: Logger; clock: Clock },
  ) {
    this.capabilities = rabbitmqCapabilities(config.queueType);
    this.#connection = new RabbitmqConnection(config, deps.logger, deps.clock);
    this.#publisher = new ConfirmPublisher(deps.logger);
    this.#channels = new ChannelBudget(MAX_SHORT_LIVED_CHANNELS, deps.clock);
    this.#exchanges = new DeclaredOnce(deps.clock);
    this.#delayQueues = new DeclaredOnce(deps.clock, DELAY_QUEUE_REDECLARE_MS);
    this.#connection.onReconnected((model) => this.#recover(model));
  }

  get state(): TransportState {
    return this.#connection.state;
  }

  async connect(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await this.#connection.connect();
  }

  async #recover(model: ChannelModel): Promise<void> {
    for (const consumer of this.#consumers) consumer.connectionLost();
    for (const topology of this.#topologies.values()) await this.#declareOn(model, topology);
    for (const consumer of this.#consumers) {
      try {
        await consumer.open(model);
      } catch (error) {
        // Its channel refused (the broker closed it: the consumer reported itself stopped, and its
        // endpoint makes a new one). Anything else is the connection's: recover it again.
        if (!consumer.stopped) throw error;
      }
    }
  }

  #model(): Promise<ChannelModel> {
    return this.#connection.whenConnected(this.config.publishTimeoutMs);
  }

  async #withChannel<T>(
    model: ChannelModel,
    what: string,
    fn: (channel: Channel) => Promise<T>,
    timeoutMs = this.config.publishTimeoutMs,
  ): Promise<T> {
    const { channel, close } = await openShortLived(this.#channels, model, what, timeoutMs);
    try {
      return await fn(channel);
    } catch (error) {
      const precondition = (error as { code?: unknown }).code === 406;
      throw new TransportError(
        `${what} failed: ${errorText(error)}${precondition ? ' (it exists with other arguments: another queue type?)' : ''}`,
        { retryable: !precondition, cause: error },
      );
    } finally {
      await close();
    }
  }

  #declareOn(model: ChannelModel, topology: EndpointTopology): Promise<void> {
    return this.#withChannel(model, `declaring endpoint "${topology.endpoint}"`, async (channel) => {
      await declareEndpoint(channel, topology, this.config.queueType);
      for (const type of topology.messageTypes) this.#exchanges.declared(model, exchangeFor(type));
    });
  }

  async declare(topology: EndpointTopology): Promise<void> {
    const model = await this.#model();
    await this.#declareOn(model, topology);
    this.#topologies.set(topology.address, topology);
  }

  async consume(address: string, callback: DeliveryCallback, options: ConsumeOptions): Promise<Consumer> {
    const model = await this.#model();
    const consumer = new RabbitmqConsumer(
      address,
      callback,
      options,
      this.#routes(address),
      this.deps.logger.child({ queue: address }),
      (c) => this.#consumers.delete(c),
    );
    this.#consumers.add(consumer);
    try {
      await consumer.open(model);
    } catch (error) {
      this.#consumers.delete(consumer);
      throw new TransportError(`consuming "${address}" failed: ${errorText(error)}`, { cause: error });
    }
    return consumer;
  }

  #routes(address: string): SettlementRoutes {
    return {
      address,
      capabilities: this.capabilities,
      publishCopy: (queue, content, options) => this.#publishCopy(queue, content, options),
      delayQueue: (delayMs) => this.#delayQueue(address, delayMs),
    };
  }

  /**
   * A copy of a message held on this connection (a delivery, a dead letter), published with
   * confirms and `mandatory`: no waiting for another connection.
   */
  async #publishCopy(queue: string, content: Buffer, options: Options.Publish): Promise<void> {
    const model = this.#connection.current;
    if (!model) throw new ConfirmLostError(new Error('not connected'));
    await this.#publisher.publish(model, { exchange: '', routingKey: queue, mandatory: true }, content, options);
  }

  async #delayQueue(address: string, delayMs: number): Promise<string> {
    const bucket = delayBucketMs(delayMs);
    const name = delayQueueName(address, bucket);
    const model = this.#connection.current;
    if (!model) throw new ConfirmLostError(new Error('not connected'));
    await this.#delayQueues.run(model, name, () =>
      this.#withChannel(model, `declaring delay queue "${name}"`, async (channel) => {
        await declareDelayQueue(channel, address, bucket, this.config.queueType);
      }),
    );
    return name;
  }

  /** Publishes with confirms; across a reconnection it tries again until the publish timeout. */
  async #publishDurably(
    target: PublishTarget,
    message: OutgoingMessage,
    prepare?: (model: ChannelModel, timeoutMs: number) => Promise<void>,
  ): Promise<void> {
    const deadline = this.deps.clock.now() + this.config.publishTimeoutMs;
    const options: Options.Publish = {
      persistent: true,
      messageId: message.messageId,
      contentType: message.contentType,
      type: message.messageType,
      headers: message.headers,
    };
    for (;;) {
      const remaining = deadline - this.deps.clock.now();
      if (remaining <= 0) {
        throw new TransportError(
          `publishing ${message.messageId} to "${target.routingKey || target.exchange}" timed out after ${this.config.publishTimeoutMs} ms`,
        );
      }
      const model = await this.#connection.whenConnected(remaining);
      try {
        await prepare?.(model, remaining);
        await withTimeout(
          this.#publisher.publish(model, target, message.body, options),
          remaining,
          () =>
            new TransportError(
              `no confirm from RabbitMQ for ${message.messageId} within ${this.config.publishTimeoutMs} ms; it may or may not be stored`,
            ),
        );
        return;
      } catch (error) {
        // The connection went away before the confirm: unknown outcome, so publish again (a
        // duplicate is possible, a loss is not). Anything else is the caller's to see.
        if (error instanceof UnroutableError || this.#connection.current === model) throw error;
        this.deps.logger.debug({ messageId: message.messageId }, 'publish interrupted by a connection loss; retrying');
      }
    }
  }

  async send(address: string, message: OutgoingMessage): Promise<void> {
    assertFitsAmqp(message, address);
    return this.#publishDurably({ exchange: '', routingKey: address, mandatory: true }, message);
  }

  async publish(message: OutgoingMessage): Promise<void> {
    assertFitsAmqp(message);
    const exchange = exchangeFor(message.messageType);
    return this.#publishDurably({ exchange, routingKey: '', mandatory: false }, message, (model, timeoutMs) =>
      // Every concurrent first publish of a type waits for the same declaration (one channel).
      this.#exchanges.run(model, exchange, () =>
        this.#withChannel(
          model,
          `declaring exchange "${exchange}"`,
          (channel) => declareExchange(channel, message.messageType),
          timeoutMs,
        ),
      ),
    );
  }

  deadLetters(address: string): DeadLetterQueue {
    const timeoutMs = this.config.publishTimeoutMs;
    return new RabbitmqDeadLetterQueue(
      address,
      {
        channel: async (what) => openShortLived(this.#channels, await this.#model(), what, timeoutMs),
        publishCopy: (queue, content, options) => this.#publishCopy(queue, content, options),
      },
      this.deps.clock,
    );
  }

  async close(): Promise<void> {
    for (const consumer of this.#consumers) consumer.connectionLost();
    this.#consumers.clear();
    await this.#connection.close();
  }
}
