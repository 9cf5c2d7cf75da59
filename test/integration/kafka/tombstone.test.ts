import kafkajs from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cloudEventsCodec } from '../../../src/index.js';
import type { Delivery, Transport } from '../../../src/transport-core/index.js';
import { ensureKafka, KAFKA_BROKERS } from '../../infra/kafka/kafka.mjs';
import { waitFor } from '../../support/wait-for.js';
import { connectKafka, unique } from './kafka-fixture.js';

describe('kafka: tombstones (null values) become tombstone envelopes', () => {
  const kafka = new kafkajs.Kafka({
    clientId: 'it-tombstone',
    brokers: KAFKA_BROKERS,
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
  const open: Transport[] = [];
  beforeAll(async () => {
    await ensureKafka();
    await producer.connect();
  }, 180_000);
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((t) => t.close()));
  });
  afterAll(async () => {
    await producer.disconnect();
  });

  const receiveOne = async (t: Transport, address: string): Promise<Delivery> => {
    const got: Delivery[] = [];
    await t.consume(address, (d) => got.push(d), { prefetch: 10 });
    await waitFor(() => got.length > 0, { timeoutMs: 15_000, what: 'the tombstone' });
    return got[0] as Delivery;
  };

  it('takes the type from the record header, the key as subject and the record time in UTC', async () => {
    const t = await connectKafka();
    open.push(t);
    const address = unique('tomb');
    await t.declare({ address, endpoint: address, messageTypes: [] });
    const timestamp = Date.parse('2026-03-04T05:06:07.089Z');
    const [meta] = await producer.send({
      topic: address,
      acks: -1,
      messages: [
        {
          key: 'customer-42',
          value: null,
          timestamp: String(timestamp),
          headers: { 'sluice-message-type': 'crm.customer.v1' },
        },
      ],
    });
    const d = await receiveOne(t, address);
    const decoded = cloudEventsCodec.decode(d.body);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.envelope).toMatchObject({
      type: 'crm.customer.v1',
      key: 'customer-42',
      tombstone: true,
      occurredAt: '2026-03-04T05:06:07.089Z',
      id: `kafka:${address}:0:${meta?.baseOffset}`,
      data: undefined,
    });
    expect(d.partitionKey).toBe('customer-42');
    await d.complete();
  });

  it('falls back to the configured type of the topic', async () => {
    const address = unique('tomb-mapped');
    const t = await connectKafka({ tombstoneTypes: { [address]: 'crm.customer.v1' } });
    open.push(t);
    await t.declare({ address, endpoint: address, messageTypes: [] });
    await producer.send({ topic: address, acks: -1, messages: [{ key: 'customer-7', value: null }] });
    const d = await receiveOne(t, address);
    const decoded = cloudEventsCodec.decode(d.body);
    expect(decoded.ok && decoded.envelope.type).toBe('crm.customer.v1');
    expect(decoded.ok && decoded.envelope.tombstone).toBe(true);
    // A release keeps the synthetic body, so the copy decodes to the same envelope id.
    await d.release();
    await d.complete().catch(() => {});
  });
});
