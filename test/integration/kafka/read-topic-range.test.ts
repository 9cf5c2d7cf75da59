import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaTransportConfigSchema } from '../../../transports/kafka/index.js';
import { readTopicRange } from '../../../transports/kafka/read-topic-range.js';
import { type KafkaProxy, type PrivateKafka, startPrivateKafka } from '../../infra/kafka/private-kafka.mjs';
import { testKafkaConfig, unique } from './kafka-fixture.js';

// Found by CI: a purge failed with "Consumer group was not initialized, consumer#run must be called
// first". readTopicRange (behind the dead-letter queue's scan, purge and redrive, and the retry
// topic's referenced bodies) sought right after `run()`, but kafkajs's `run()` also resolves when the
// first join failed: the member has crashed and is gone (kafkajs restarts it later, or not at all).
// Here the first join fails every time: the proxy in front of a private broker holds the reader's
// coordinator lookup (the first step of a join) until the request times out, and the read must
// still return exactly its range.
describe('kafka: reading an offset range through a member whose first join fails', () => {
  let broker: PrivateKafka | undefined;
  const topic = unique('range');
  const RECORDS = 20;
  beforeAll(async () => {
    broker = await startPrivateKafka({ proxy: true });
    const kafka = new kafkajs.Kafka({ brokers: broker.brokers, logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    for (const partition of [0, 1]) {
      const messages = Array.from({ length: RECORDS }, (_, n) => ({ value: `p${partition}-${n}`, partition }));
      await producer.send({ topic, messages });
    }
    await producer.disconnect();
  }, 180_000);
  afterAll(async () => {
    await broker?.remove();
  }, 60_000);

  /** A client that gives up on a held request after 1.5 s and does not retry it: the join crashes. */
  function client(clientId: string, restart: boolean) {
    const kafka = new kafkajs.Kafka({
      brokers: (broker as PrivateKafka).brokers,
      clientId,
      requestTimeout: 1_500,
      retry: { retries: 0, initialRetryTime: 100, restartOnFailure: async () => restart },
      logLevel: kafkajs.logLevel.NOTHING,
    });
    const config = KafkaTransportConfigSchema.parse({ ...testKafkaConfig, brokers: (broker as PrivateKafka).brokers });
    return { kafka, config };
  }

  for (const restart of [true, false]) {
    const kafkajsDoes = restart ? 'restarts' : 'does not restart';
    it(`returns exactly the range when the first join crashes (kafkajs ${kafkajsDoes} the member)`, async () => {
      const proxy = (broker as PrivateKafka).proxy as KafkaProxy;
      const clientId = unique('reader');
      const held = proxy.holdNextFindCoordinator(clientId);
      const reading = readTopicRange(client(clientId, restart), topic, {
        ranges: new Map([
          [0, { from: 3, to: 11 }],
          [1, { from: 0, to: RECORDS }],
        ]),
      });
      await held; // the first join is stuck: it will time out and the member crash
      const records = await reading;
      const values = records.map((r) => `${r.partition}:${r.message.offset}:${r.message.value?.toString()}`);
      const expected = [
        ...Array.from({ length: 8 }, (_, i) => `0:${i + 3}:p0-${i + 3}`),
        ...Array.from({ length: RECORDS }, (_, i) => `1:${i}:p1-${i}`),
      ];
      expect(values).toEqual(expected);
    }, 120_000);
  }
});
