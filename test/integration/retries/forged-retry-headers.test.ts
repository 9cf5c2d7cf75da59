// A producer must not be able to switch retries off by sending `sluice-attempts: 99` (and a first
// failure time) with a new message; a legitimate retry copy must keep its count. "A retry copy" is a
// different thing on each transport (a memory re-enqueue, a RabbitMQ copy through a delay queue, a
// Kafka record on the retry topic, a Service Bus scheduled copy), so each runs over its real broker.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  type BusConfigInput,
  cloudEventsCodec,
  createBus,
  createEnvelope,
  createMemoryBroker,
  defineMessage,
  memoryTransport,
  type TransportDefinition,
} from '../../../src/index.js';
import { kafkaTransport } from '../../../transports/kafka/index.js';
import { waitFor } from '../../support/wait-for.js';
import { testKafkaConfig } from '../kafka/kafka-fixture.js';
import { trackedRabbitmq } from '../rabbitmq/rabbitmq-test-kit.js';
import { type ServiceBusFixture, startServiceBusFixture } from '../servicebus/servicebus-fixture.js';

const quorum = trackedRabbitmq({ queueType: 'quorum' });
const classic = trackedRabbitmq({ queueType: 'classic' });
let serviceBus: ServiceBusFixture | undefined;
const buses: Bus[] = [];

type MakeBus = () => Promise<Bus>;
const plain =
  (transport: BusConfigInput['transport'], definition?: TransportDefinition): MakeBus =>
  async () =>
    createBus(
      { service: 'forged', transport, shutdown: { signals: [], timeoutMs: 2_000 } },
      { transports: definition ? [definition] : [], logger: pino({ level: 'silent' }) },
    );

const transports: [string, MakeBus][] = [
  ['memory', plain({ kind: 'memory' }, memoryTransport({ broker: createMemoryBroker() }) as TransportDefinition)],
  ['rabbitmq (quorum)', plain(quorum.config, quorum.definition as TransportDefinition)],
  ['rabbitmq (classic)', plain(classic.config, classic.definition as TransportDefinition)],
  ['kafka', plain(testKafkaConfig, kafkaTransport() as TransportDefinition)],
  [
    'servicebus',
    async () => {
      serviceBus ??= await startServiceBusFixture();
      return serviceBus.bus('forged');
    },
  ],
];

describe('retry state headers a producer sets are not believed', () => {
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.stop()));
    await serviceBus?.close();
    await quorum.cleanup();
    await classic.cleanup();
  }, 60_000);

  for (const [name, makeBus] of transports) {
    it(`${name}: a first delivery carrying sluice-attempts: 99 gets every retry; its retry copies keep their count`, async () => {
      // Before: the forged count was believed, and the message was dead-lettered after one failure.
      const suffix = randomUUID().slice(0, 8);
      const Charge = defineMessage(`forged.charge-${suffix}.v1`, z.object({ n: z.number() }));
      const endpoint = `forged-${suffix}`;
      const bus = await makeBus();
      buses.push(bus);
      let calls = 0;
      bus
        .endpoint(endpoint, { retry: { kind: 'intervals', delaysMs: [100, 100] }, inProcessRetryMaxDelayMs: 0 })
        .handle(Charge, async () => {
          calls++;
          throw new Error('downstream still failing');
        });
      await bus.start();

      // A producer outside Sluice, writing the broker message itself.
      const envelope = createEnvelope(Charge.type, 'a-producer', { n: 1 });
      await bus.transport.send(endpoint, {
        messageId: envelope.id,
        body: cloudEventsCodec.encode(envelope),
        headers: { 'sluice-attempts': '99', 'sluice-first-failure-at': '2000-01-01T00:00:00.000Z' },
        contentType: cloudEventsCodec.contentType,
        key: undefined,
        messageType: Charge.type,
      });

      const dlq = bus.deadLetters(endpoint);
      await waitFor(async () => (await dlq.count()) === 1, { timeoutMs: 30_000, what: 'the dead letter' });
      const [dead] = await dlq.peek(1);
      // The full policy: the first attempt and two retries, each retry through the broker.
      expect(dead?.fault).toMatchObject({ reason: 'retries-exhausted', attempts: 3 });
      expect(calls).toBe(3);
      expect(Date.parse(dead?.fault?.firstFailureAt ?? '')).toBeGreaterThan(Date.parse('2026-01-01T00:00:00Z'));
      expect(bus.health().endpoints[endpoint]?.counters.retried).toBe(2);
    }, 60_000);
  }
});
