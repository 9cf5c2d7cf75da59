// A deliberately minimal transport, written only against the package's public entry points (what a
// transport author outside this repository has), to prove the conformance kit from outside: an
// in-process queue per address with peek-lock, prefetch, delayed release and a dead-letter list.
// It has no publish (fan-out by type) and no dead-letter management (scan, redrive, purge), and
// declares so: the kit skips the cases that need them. Not for production: nothing leaves the process.
import { z } from 'zod';
import {
  AlreadySettledError,
  type Clock,
  type Consumer,
  type ConsumeOptions,
  type DeadLetteredMessage,
  type DeadLetterQueue,
  type Delivery,
  type DeliveryCallback,
  deadLetterHeaders,
  type EndpointTopology,
  defineTransport,
  type FaultDetails,
  Fifo,
  LockLostError,
  type OutgoingMessage,
  type ReleaseOptions,
  type Transport,
  type TransportDefinition,
  TransportError,
  type TransportState,
} from 'sluice/transport';

export const MinimalTransportConfigSchema = z.strictObject({ kind: z.literal('minimal') });
export type MinimalTransportConfig = z.infer<typeof MinimalTransportConfigSchema>;

interface StoredMessage {
  readonly message: OutgoingMessage;
  headers: Readonly<Record<string, string>>;
  deliveryCount: number;
}

/** One address: ready messages, the consumers taking from it, its dead letters. */
class Queue {
  readonly ready = new Fifo<StoredMessage>();
  readonly consumers: MinimalConsumer[] = [];
  readonly dead: DeadLetteredMessage[] = [];
  #next = 0;
  #scheduled = false;

  constructor(readonly address: string) {}

  /** Hands ready messages to consumers with room, in turn, once per burst (never re-entrantly). */
  pump(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      while (this.ready.length > 0) {
        const consumer = this.#withRoom();
        if (!consumer) return;
        consumer.deliver(this.ready.shift() as StoredMessage);
      }
    });
  }

  #withRoom(): MinimalConsumer | undefined {
    for (let i = 0; i < this.consumers.length; i++) {
      const consumer = this.consumers[(this.#next + i) % this.consumers.length] as MinimalConsumer;
      if (consumer.hasRoom()) {
        this.#next = (this.#next + i + 1) % this.consumers.length;
        return consumer;
      }
    }
    return undefined;
  }
}

class MinimalDelivery implements Delivery {
  readonly deliveryId: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly deliveryCount: number;
  readonly partitionKey: string | undefined;
  #state: 'locked' | 'settled' | 'lost' = 'locked';

  constructor(
    private readonly stored: StoredMessage,
    private readonly consumer: MinimalConsumer,
  ) {
    this.deliveryId = `${consumer.queue.address}#${stored.message.messageId}#${stored.deliveryCount}`;
    this.body = stored.message.body;
    this.headers = stored.headers;
    this.deliveryCount = stored.deliveryCount;
    this.partitionKey = stored.message.key;
  }

  get address(): string {
    return this.consumer.queue.address;
  }

  /** The connection went away: the message is back on its queue, this delivery can no longer settle. */
  lose(): StoredMessage {
    this.#state = 'lost';
    return this.stored;
  }

  #settle(): Queue {
    if (this.#state === 'settled') throw new AlreadySettledError(this.deliveryId);
    if (this.#state === 'lost') throw new LockLostError(`delivery ${this.deliveryId}: its connection closed`);
    this.#state = 'settled';
    this.consumer.settled(this);
    return this.consumer.queue;
  }

  async complete(): Promise<void> {
    this.#settle().pump();
  }

  async release(options: ReleaseOptions = {}): Promise<void> {
    const queue = this.#settle();
    this.stored.headers = { ...this.stored.headers, ...options.headers };
    const back = () => {
      queue.ready.push(this.stored);
      queue.pump();
    };
    if (options.delayMs) this.consumer.clock.setTimer(back, options.delayMs);
    else back();
  }

  async deadLetter(fault: FaultDetails): Promise<void> {
    const queue = this.#settle();
    const { message } = this.stored;
    const deadLetterId = `${message.messageId}#${queue.dead.length}`;
    const headers = deadLetterHeaders(this.stored.headers, fault);
    queue.dead.push({ deadLetterId, messageId: message.messageId, body: message.body, headers, fault });
    queue.pump();
  }

  async renewLock(): Promise<void> {
    // Locks last as long as the connection.
    if (this.#state === 'lost') throw new LockLostError(`delivery ${this.deliveryId}: its connection closed`);
  }
}

class MinimalConsumer implements Consumer {
  readonly #unsettled = new Set<MinimalDelivery>();
  #paused: boolean;
  #closed = false;
  #drained: (() => void) | undefined;

  constructor(
    readonly queue: Queue,
    private readonly callback: DeliveryCallback,
    private readonly options: ConsumeOptions,
    readonly clock: Clock,
  ) {
    this.#paused = options.paused ?? false;
  }

  get inFlight(): number {
    return this.#unsettled.size;
  }

  hasRoom(): boolean {
    return !this.#paused && !this.#closed && this.#unsettled.size < this.options.prefetch;
  }

  deliver(stored: StoredMessage): void {
    stored.deliveryCount++;
    const delivery = new MinimalDelivery(stored, this);
    this.#unsettled.add(delivery);
    this.callback(delivery);
  }

  settled(delivery: MinimalDelivery): void {
    this.#unsettled.delete(delivery);
    if (this.#unsettled.size === 0) this.#drained?.();
  }

  async pause(): Promise<void> {
    this.#paused = true;
  }

  async resume(): Promise<void> {
    this.#paused = false;
    this.queue.pump();
  }

  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#unsettled.size > 0 && options.drainTimeoutMs) {
      await new Promise<void>((resolve) => {
        const cancel = this.clock.setTimer(resolve, options.drainTimeoutMs ?? 0);
        this.#drained = () => {
          cancel();
          resolve();
        };
      });
    }
    this.abandon();
  }

  /** Returns every unsettled message to the queue, as a broker does for a dead connection. */
  abandon(): void {
    this.#closed = true;
    for (const delivery of this.#unsettled) this.queue.ready.unshift(delivery.lose());
    this.#unsettled.clear();
    const index = this.queue.consumers.indexOf(this);
    if (index >= 0) this.queue.consumers.splice(index, 1);
    this.queue.pump();
  }
}

class MinimalTransport implements Transport {
  readonly kind = 'minimal';
  readonly capabilities = {
    nativeDelay: true,
    nativeDeadLetter: true,
    deliveryCount: 'native',
    ordering: 'none',
    durable: false,
  } as const;
  #state: TransportState = 'idle';
  readonly #consumers = new Set<MinimalConsumer>();

  constructor(
    private readonly queues: Map<string, Queue>,
    private readonly clock: Clock,
  ) {}

  get state(): TransportState {
    return this.#state;
  }

  async connect(): Promise<void> {
    this.#state = 'connected';
  }

  #queue(address: string): Queue {
    if (this.#state !== 'connected') throw new TransportError(`minimal transport is ${this.#state}`);
    const queue = this.queues.get(address);
    if (!queue) throw new TransportError(`no queue "${address}": declare it first`, { retryable: false });
    return queue;
  }

  async declare(topology: EndpointTopology): Promise<void> {
    for (const address of [topology.address, topology.skippedAddress]) {
      if (address !== undefined && !this.queues.has(address)) this.queues.set(address, new Queue(address));
    }
  }

  async consume(address: string, callback: DeliveryCallback, options: ConsumeOptions): Promise<Consumer> {
    const queue = this.#queue(address);
    const consumer = new MinimalConsumer(queue, callback, options, this.clock);
    queue.consumers.push(consumer);
    this.#consumers.add(consumer);
    queue.pump();
    return consumer;
  }

  async send(address: string, message: OutgoingMessage): Promise<void> {
    const queue = this.#queue(address);
    queue.ready.push({ message, headers: message.headers, deliveryCount: 0 });
    queue.pump();
  }

  async publish(): Promise<void> {
    throw new TransportError('the minimal transport has no publish: send to an address', { retryable: false });
  }

  deadLetters(address: string): DeadLetterQueue {
    const dead = () => this.#queue(address).dead;
    const unsupported = (what: string) =>
      new TransportError(`the minimal transport cannot ${what} dead letters`, { retryable: false });
    return {
      peek: async (limit = 100) => dead().slice(0, limit),
      count: async () => dead().length,
      scan: () => ({
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(unsupported('scan')) }),
      }),
      redrive: () => Promise.reject(unsupported('redrive')),
      purge: () => Promise.reject(unsupported('purge')),
    };
  }

  async close(): Promise<void> {
    this.#state = 'closed';
    for (const consumer of this.#consumers) consumer.abandon();
    this.#consumers.clear();
  }
}

/** The definition: every transport it creates is a connection to the definition's own queues. */
export function minimalTransport(): TransportDefinition<MinimalTransportConfig> {
  const queues = new Map<string, Queue>();
  return defineTransport({
    kind: 'minimal',
    configSchema: MinimalTransportConfigSchema,
    create: (_config, deps) => new MinimalTransport(queues, deps.clock),
  });
}
