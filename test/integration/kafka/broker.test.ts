// Smoke test of the real single-node Kafka broker (test/infra/kafka/kafka.mjs) with kafkajs 2.2.4:
// topic creation, produce with acks=-1 and headers, consume everything back in a consumer group.
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureKafka, KAFKA_BROKERS } from '../../infra/kafka/kafka.mjs';

const COUNT = 100;

describe('kafka broker (KRaft, 3.9.1 from Maven Central)', () => {
  const kafka = new Kafka({ clientId: 'sluice-broker-smoke', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;

  beforeAll(async () => {
    await ensureKafka({ log: (m) => process.stderr.write(`${m}\n`) });
  }, 180_000);

  afterAll(async () => {
    await consumer?.disconnect();
    await producer?.disconnect();
  });

  it('produces 100 messages (acks=-1, headers) and consumes all of them in a group', async () => {
    const topic = `sluice-smoke-${randomUUID()}`;
    const groupId = `sluice-smoke-group-${randomUUID()}`;

    const admin = kafka.admin();
    await admin.connect();
    const cluster = await admin.describeCluster();
    expect(cluster.brokers).toHaveLength(1);
    expect(
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true }),
    ).toBe(true);
    await admin.disconnect();

    const expected = Array.from({ length: COUNT }, (_, i) => `value-${i}`);

    producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const results = await producer.send({
      topic,
      acks: -1,
      messages: expected.map((value, i) => ({ key: `k-${i % 7}`, value, headers: { 'sluice-seq': String(i) } })),
    });
    expect(results[0]?.errorCode).toBe(0);

    const received: { value: string; seq: string | undefined; offset: string }[] = [];
    consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      void consumer?.run({
        eachMessage: async ({ message }) => {
          received.push({
            value: message.value?.toString() ?? '',
            seq: message.headers?.['sluice-seq']?.toString(),
            offset: message.offset,
          });
          if (received.length >= COUNT) resolve();
        },
      });
    });
    await Promise.race([
      done,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`only ${received.length}/${COUNT} received`)), 30_000),
      ),
    ]);

    expect(received.map((r) => r.value)).toEqual(expected);
    expect(received.map((r) => r.seq)).toEqual(expected.map((_, i) => String(i)));
    expect(new Set(received.map((r) => r.offset)).size).toBe(COUNT);

    // The group's offsets were committed to __consumer_offsets (needs offsets.topic.replication.factor=1).
    await consumer.stop();
    await consumer.disconnect();
    consumer = undefined;
    const admin2 = kafka.admin();
    await admin2.connect();
    const offsets = await admin2.fetchOffsets({ groupId, topics: [topic] });
    await admin2.disconnect();
    expect(offsets[0]?.partitions[0]?.offset).toBe(String(COUNT));
  }, 60_000);
});
