import { afterAll, describe, expect, it } from 'vitest';
import { InvalidOutgoingMessageError, TransportError } from '../../../src/index.js';
import type { OutgoingMessage, Transport } from '../../../src/transport-core/index.js';
import { connectKafka, limitMessageBytes, unique } from './kafka-fixture.js';

const message = (messageType: string, body: Buffer, messageId = unique('m')): OutgoingMessage => ({
  messageId,
  body,
  headers: {},
  contentType: 'application/octet-stream',
  key: undefined,
  messageType,
});

describe("Kafka transport: the broker's own limits fail at publish", () => {
  const open: Transport[] = [];
  afterAll(async () => {
    await Promise.allSettled(open.map((t) => t.close()));
  });

  it('a record larger than its topic accepts fails as InvalidOutgoingMessageError, not retryable', async () => {
    // Before: a retryable TransportError ("cannot produce"), as if the broker were down.
    const t = await connectKafka();
    open.push(t);
    const address = unique('limits');
    const type = `limits.${address}.v1`;
    await t.declare({ address, endpoint: address, messageTypes: [type] });
    await limitMessageBytes(type, 2_000);

    const error = await t.publish(message(type, Buffer.alloc(10_000, 120))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOutgoingMessageError);
    expect((error as InvalidOutgoingMessageError).retryable).toBe(false);
    expect((error as Error).message).toMatch(/larger than the topic accepts \(max\.message\.bytes\)/);
    expect(error).not.toBeInstanceOf(TransportError);
    // Kafka carries the id in a header: a long one is no limit of its own.
    await t.publish(message(type, Buffer.from('small'), 'i'.repeat(256)));
  });
});
