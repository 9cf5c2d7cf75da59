import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEFAULT_CONSUMER_RESTART } from '../../src/bus/consumer-restart-config.js';
import { Endpoint } from '../../src/bus/endpoint.js';
import {
  cloudEventsCodec,
  createBus,
  createEnvelope,
  createMemoryBroker,
  defineMessage,
  memoryTransport,
} from '../../src/index.js';
import { systemClock } from '../../src/internal/clock.js';
import { TAKE_TURN } from '../../src/pipeline/delivery-pipeline.js';
import { COMPLETED } from '../../src/pipeline/outcome.js';
import type { Delivery } from '../../src/transport-core/delivery.js';
import type { Consumer, DeliveryCallback, Transport } from '../../src/transport-core/transport.js';

// Issue 18: with stages and handler finishing synchronously, nothing may nest one message's run in
// another's: neither the keyed limiter starting the next task, nor a transport that hands over the
// next delivery from inside a settlement. The stack must not grow with the number of messages.
const Tick = defineMessage('test.tick.v1', z.object({ n: z.number() }));
const silent = pino({ level: 'silent' });

async function oneKeyThroughMemory(total: number, concurrency: number, prefetch: number) {
  const broker = createMemoryBroker();
  const bus = createBus(
    { transport: { kind: 'memory' }, shutdown: { signals: [] }, logging: { level: 'silent' } },
    { transports: [memoryTransport({ broker })], logger: silent },
  );
  let handled = 0;
  let inOrder = true;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => {
    resolve = r;
  });
  bus.endpoint('ticks', { concurrency, prefetch, orderBy: 'key' }).handle(Tick, (m) => {
    if (m.n !== handled) inOrder = false;
    if (++handled === total) resolve();
  });
  const queue = broker.queue('ticks');
  for (let n = 0; n < total; n++) {
    const envelope = createEnvelope(Tick.type, 'test', { n }, { key: 'one' });
    queue.enqueue({
      messageId: envelope.id,
      body: cloudEventsCodec.encode(envelope),
      headers: {},
      key: 'one',
      deliveryCount: 0,
    });
  }
  await bus.start();
  await finished;
  await bus.stop();
  return { handled, inOrder, completed: bus.health().endpoints.ticks?.counters.completed };
}

describe('a synchronous handler and a long run of one key', () => {
  for (const concurrency of [1, 64]) {
    it(`completes 100,000 messages of one key through the memory transport (concurrency ${concurrency}, prefetch 500)`, async () => {
      const result = await oneKeyThroughMemory(100_000, concurrency, 500);
      expect(result).toEqual({ handled: 100_000, inOrder: true, completed: 100_000 });
    });
  }
});

/**
 * A broker client that hands over its next delivery from inside the settlement of the one before
 * (some do, from their ack path): it records how deeply its callback calls nest.
 */
class ReentrantSource {
  next = 0;
  completed = 0;
  depth = 0;
  maxDepth = 0;
  readonly done: Promise<void>;
  #resolve!: () => void;
  #callback: DeliveryCallback | undefined;

  constructor(readonly total: number) {
    this.done = new Promise((r) => {
      this.#resolve = r;
    });
  }

  readonly transport = {
    consume: async (_address: string, callback: DeliveryCallback): Promise<Consumer> => {
      this.#callback = callback;
      queueMicrotask(() => this.handOut());
      return { pause: async () => {}, resume: async () => {}, close: async () => {}, inFlight: 0 };
    },
  } as unknown as Transport;

  handOut(): void {
    if (this.next >= this.total || !this.#callback) return;
    const delivery = this.#delivery(this.next++);
    this.depth++;
    this.maxDepth = Math.max(this.maxDepth, this.depth);
    try {
      this.#callback(delivery);
    } finally {
      this.depth--;
    }
  }

  #settled(): Promise<void> {
    if (++this.completed === this.total) this.#resolve();
    this.handOut();
    return Promise.resolve();
  }

  #delivery(n: number): Delivery {
    const settled = () => this.#settled();
    return {
      deliveryId: `d-${n}`,
      body: Buffer.alloc(0),
      headers: {},
      deliveryCount: 1,
      partitionKey: 'one',
      address: 'reentrant',
      complete: settled,
      release: settled,
      deadLetter: settled,
      renewLock: async () => {},
    };
  }
}

describe('an endpoint over a transport that hands over the next delivery from inside a settlement', () => {
  it('settles 100,000 synchronously decided deliveries without nesting them', async () => {
    const source = new ReentrantSource(100_000);
    const endpoint = new Endpoint({
      info: { name: 'reentrant', address: 'reentrant', clock: systemClock },
      prefetch: 1,
      // Every delivery takes its turn behind one key, and is decided without waiting.
      pipeline: { head: () => TAKE_TURN, keyOf: () => 'one', turn: () => COMPLETED, mappers: [], concurrency: 1 },
      logger: silent,
      forward: async () => {},
      observers: [],
      supervision: { prepare: async () => {}, config: DEFAULT_CONSUMER_RESTART, clock: systemClock },
    });
    await endpoint.start(source.transport);
    await source.done;
    await endpoint.stop(1_000);
    expect(source.completed).toBe(100_000);
    expect(source.maxDepth).toBe(1);
    expect(endpoint.counters.completed).toBe(100_000);
  });
});
