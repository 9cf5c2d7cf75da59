import { kafkaTransport } from 'sluice/kafka';
import { runTransportConformance } from 'sluice/testing/conformance';
import { beforeAll } from 'vitest';
import { ensureKafka } from '../infra/kafka/kafka.mjs';
import { testKafkaConfig } from '../integration/kafka/kafka-fixture.js';

beforeAll(async () => {
  await ensureKafka();
}, 180_000);

runTransportConformance({
  name: 'kafka',
  definition: kafkaTransport(),
  // Low timeouts so that group joins and rebalances take well under a second on the test broker.
  config: { ...testKafkaConfig, clientId: 'sluice-conformance' },
  capabilities: { publish: true, competingConsumers: true, deadLetterManagement: true },
  patienceMs: 15_000,
});
