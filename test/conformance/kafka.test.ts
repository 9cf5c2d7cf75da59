import pino from 'pino';
import { beforeAll } from 'vitest';
import { systemClock } from '../../src/transport/index.js';
import { kafkaTransport, KafkaTransportConfigSchema } from '../../transports/kafka/index.js';
import { ensureKafka, KAFKA_BROKERS } from '../infra/kafka/kafka.mjs';
import { describeTransportConformance } from './transport-conformance.js';

/** Low timeouts so that group joins and rebalances take well under a second on the test broker. */
const transportConfig = {
  kind: 'kafka' as const,
  brokers: KAFKA_BROKERS,
  clientId: 'sluice-conformance',
  sessionTimeoutMs: 6_000,
  rebalanceTimeoutMs: 6_000,
  heartbeatIntervalMs: 300,
  maxWaitTimeMs: 50,
  commitIntervalMs: 20,
  clientLogLevel: 'nothing' as const,
};
const definition = kafkaTransport();

beforeAll(async () => {
  await ensureKafka();
}, 180_000);

describeTransportConformance('kafka', {
  definition,
  transportConfig,
  patienceMs: 15_000,
  async connect() {
    const transport = definition.create(KafkaTransportConfigSchema.parse(transportConfig), {
      logger: pino({ level: 'silent' }),
      clock: systemClock,
    });
    await transport.connect();
    return transport;
  },
});
