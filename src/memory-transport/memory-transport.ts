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
import { ConnectionState, ConsumerGate, scanPages } from '../../src/transport-core/index.js';
import type { MemoryBroker } from './memory-broker.js';
import { MemoryConsumer } from './memory-consumer.js';

export const memoryCapabilities: TransportCapabilities = {
  nativeDelay: true,
  nativeDeadLetter: true,
  deliveryCount: 'native',
  ordering: 'none',
  durable: false,
};

/**
 * One connection to a {@link MemoryBroker}. Closing it returns its unsettled deliveries to their
 * queues with the delivery count kept, exactly as a broker treats a connection that dropped.
 */
export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  readonly capabilities = memoryCapabilities;
  readonly #connection = new ConnectionState('memory');
  readonly #consumers = new Set<MemoryConsumer>();

  constructor(
    readonly broker: MemoryBroker,
    private readonly deps: { logger: Logger; clock: Clock },
  ) {}

  get state(): TransportState {
    return this.#connection.state;
  }

  connect(): Promise<void> {
    return this.#connection.connect();
  }

  async declare(topology: EndpointTopology): Promise<void> {
    this.#connection.assertConnected();
    this.broker.queue(topology.address);
    if (topology.skippedAddress !== undefined) this.broker.queue(topology.skippedAddress);
    for (const type of topology.messageTypes) this.broker.bind(type, topology.address);
  }

  async consume(address: string, callback: DeliveryCallback, options: ConsumeOptions): Promise<Consumer> {
    this.#connection.assertConnected();
    const queue = this.broker.queue(address);
    const gate = new ConsumerGate({
      ...options,
      clock: this.deps.clock,
      logger: this.deps.logger,
      what: `memory consumer of "${address}"`,
    });
    const consumer = new MemoryConsumer(queue, callback, gate, this.capabilities, (c) => this.#consumers.delete(c));
    this.#consumers.add(consumer);
    queue.addConsumer(consumer);
    return consumer;
  }

  async send(address: string, message: OutgoingMessage): Promise<void> {
    this.#connection.assertConnected();
    this.broker.queue(address).enqueue({
      messageId: message.messageId,
      body: message.body,
      headers: { ...message.headers },
      key: message.key,
      deliveryCount: 0,
    });
  }

  async publish(message: OutgoingMessage): Promise<void> {
    this.#connection.assertConnected();
    const addresses = this.broker.subscribers(message.messageType);
    if (addresses.size === 0) {
      this.deps.logger.debug({ messageType: message.messageType }, 'published with no subscribers');
    }
    for (const address of addresses) await this.send(address, message);
  }

  deadLetters(address: string): DeadLetterQueue {
    const queue = this.broker.queue(address);
    return {
      peek: async (limit = 100) => queue.deadLetterSnapshot().slice(0, limit),
      count: async () => queue.deadLetterCount,
      scan: (options) => scanPages(queue.deadLetterSnapshot(), options),
      redrive: async (selection, reason) => queue.redrive(selection, reason),
      purge: async (selection) => queue.purge(selection),
    };
  }

  async close(): Promise<void> {
    if (!this.#connection.close()) return;
    for (const consumer of this.#consumers) {
      consumer.abandonAll();
      consumer.close().catch(() => {});
    }
    this.#consumers.clear();
  }
}
