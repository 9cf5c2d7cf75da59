import { runTransportConformance } from 'sluice/testing/conformance';
import { afterAll } from 'vitest';
import { trackedRabbitmq } from '../integration/rabbitmq/rabbitmq-test-kit.js';

// The suite over a real broker (127.0.0.1:5672), once per queue type. Queues the suite declares
// are deleted afterwards; delay queues expire by themselves.
for (const queueType of ['quorum', 'classic'] as const) {
  const rabbit = trackedRabbitmq({ queueType });
  afterAll(() => rabbit.cleanup());
  runTransportConformance({
    name: `rabbitmq (${queueType} queues)`,
    definition: rabbit.definition,
    config: { ...rabbit.config, kind: 'rabbitmq' },
    capabilities: { publish: true, competingConsumers: true, deadLetterManagement: true },
    patienceMs: 10_000,
  });
}
