import amqp from 'amqplib';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, defineMessage } from '../../../src/index.js';
import type { Delivery } from '../../../src/transport-core/index.js';
import { waitFor } from '../../support/wait-for.js';
import { listQueues, RABBITMQ_URL, trackedRabbitmq, unique } from './rabbitmq-test-kit.js';

const rabbit = trackedRabbitmq({ queueType: 'quorum' });
const skippedQueues: string[] = [];

async function deleteQueue(queue: string): Promise<void> {
  const connection = await amqp.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(queue);
  } finally {
    await connection.close();
  }
}

describe('rabbitmq: unknownTypes skippedQueue', () => {
  const buses: Bus[] = [];
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.stop()));
    await Promise.allSettled(skippedQueues.map(deleteQueue));
    await rabbit.cleanup();
  });

  function skippingBus() {
    const Known = defineMessage(`skip.${unique('known')}.v1`, z.object({ n: z.number() }));
    const Unknown = defineMessage(`skip.${unique('unknown')}.v1`, z.object({ n: z.number() }));
    const bus = createBus(
      { service: 'skip-test', transport: rabbit.config, shutdown: { signals: [], timeoutMs: 2_000 } },
      { transports: [rabbit.definition], logger: pino({ level: 'silent' }) },
    );
    buses.push(bus);
    const endpoint = unique('skip');
    skippedQueues.push(`${endpoint}.skipped`);
    bus.endpoint(endpoint, { unknownTypes: 'skippedQueue' }).handle(Known, async () => {});
    const counters = () => bus.health().endpoints[endpoint]?.counters;
    return { bus, endpoint, Unknown, counters };
  }

  it('declares <address>.skipped with the endpoint and moves an unknown type there', async () => {
    // Before: the skipped queue was never declared, the forward failed, and the message went back
    // to the endpoint queue again and again (a warning every second), never skipped.
    const { bus, endpoint, Unknown, counters } = skippingBus();
    await bus.start();
    expect((await listQueues(`${endpoint}.skipped`)).get(`${endpoint}.skipped`)?.type).toBe('quorum');

    const id = await bus.send(endpoint, Unknown, { n: 1 });
    await waitFor(() => counters()?.skipped === 1, { timeoutMs: 10_000, what: 'skipped' });
    const moved = await new Promise<Delivery>((resolve) => {
      void bus.transport.consume(`${endpoint}.skipped`, resolve, { prefetch: 1 });
    });
    expect(JSON.parse(moved.body.toString()).id).toBe(id);
    expect(moved.headers['sluice-skip-reason']).toBe('unknown-type');
    await moved.complete();
    expect(counters()).toMatchObject({ settleFailures: 0, deadLettered: 0, received: 1 });
  });

  it('dead-letters an unknown type, saying why, when its skipped queue is gone, instead of cycling it', async () => {
    const { bus, endpoint, Unknown, counters } = skippingBus();
    await bus.start();
    await deleteQueue(`${endpoint}.skipped`);

    await bus.send(endpoint, Unknown, { n: 2 });
    const dlq = bus.deadLetters(endpoint);
    await waitFor(async () => (await dlq.count()) === 1, { timeoutMs: 15_000, what: 'the dead letter' });
    const [dead] = await dlq.peek(1);
    expect(dead?.fault?.reason).toBe('unknown-message-type');
    expect(dead?.fault?.description).toMatch(
      new RegExp(
        `moving it to "${endpoint}\\.skipped" failed \\(1 try\\): UnroutableError: no queue "${endpoint}\\.skipped"`,
      ),
    );
    // The broker refused the copy (no such queue): one try, never given back to the endpoint queue.
    expect(counters()).toMatchObject({ received: 1, deadLettered: 1, skipped: 0, settleFailures: 1 });
  });
});
