import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineMessage, InvalidOutgoingMessageError } from '../../../src/index.js';
import type { OutgoingMessage, Transport } from '../../../src/transport-core/index.js';
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

  it('refuses a message id over 255 UTF-8 bytes at publish and send, not retryable, naming the limit', async () => {
    // Before: amqplib refused the frame and the publish failed with ConfirmLostError, retryable.
    const Note = defineMessage(`limits.${unique('note')}.v1`, z.object({ n: z.number() }));
    const bus = createBus(
      { service: 'limits', transport: rabbit.config, shutdown: { signals: [], timeoutMs: 1_000 } },
      { transports: [rabbit.definition], logger: pino({ level: 'silent' }) },
    );
    const endpoint = unique('limits');
    bus.endpoint(endpoint).handle(Note, async () => {});
    await bus.start();
    try {
      // 200 characters: within the envelope's 256, but 400 bytes in UTF-8.
      const id = 'é'.repeat(200);
      for (const attempt of [
        () => bus.publish(Note, { n: 1 }, { id }),
        () => bus.send(endpoint, Note, { n: 1 }, { id }),
      ]) {
        const error = await attempt().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidOutgoingMessageError);
        expect((error as InvalidOutgoingMessageError).retryable).toBe(false);
        expect((error as Error).message).toMatch(/message id to 255 UTF-8 bytes .* has 400/);
      }
      // 255 bytes is carried, and the connection is unharmed.
      await bus.send(endpoint, Note, { n: 2 }, { id: 'a'.repeat(255) });
      expect(bus.health().transport.state).toBe('connected');
    } finally {
      await bus.stop();
    }
  });
});
