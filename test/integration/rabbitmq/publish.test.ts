import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import type { OutgoingMessage, Transport } from '../../../src/transport/index.js';
import { RABBITMQ_URL, trackedRabbitmq, unique } from './rabbitmq-test-kit.js';

const rabbit = trackedRabbitmq({ queueType: 'quorum' });
const open: Transport[] = [];

const message = (messageType: string, n: number): OutgoingMessage => ({
  messageId: randomUUID(),
  body: Buffer.from(String(n)),
  headers: {},
  contentType: 'text/plain',
  key: undefined,
  messageType,
});

async function messageCount(queue: string): Promise<number> {
  const connection = await amqp.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    return (await channel.checkQueue(queue)).messageCount;
  } finally {
    await connection.close();
  }
}

describe('rabbitmq publish', () => {
  afterAll(async () => {
    await Promise.allSettled(open.map((t) => t.close()));
    await rabbit.cleanup();
  });

  it('10,000 concurrent first publishes of a type share one exchange declaration and all arrive', async () => {
    // Before: each publish that found the exchange undeclared opened a channel of its own to
    // declare it; ~8,000 of 10,000 failed with "No channels left to allocate".
    const consumer = await rabbit.connect();
    const publisher = await rabbit.connect();
    open.push(consumer, publisher);
    const address = unique('first-publish');
    const type = `first-publish.${address}.v1`;
    await consumer.declare({ address, endpoint: address, messageTypes: [type] });

    const results = await Promise.allSettled(
      Array.from({ length: 10_000 }, (_, n) => publisher.publish(message(type, n))),
    );
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failed.map((f) => String(f.reason)).slice(0, 3)).toEqual([]);
    // Every publish was confirmed: the bound queue holds all of them.
    expect(await messageCount(address)).toBe(10_000);
  }, 120_000);
});
