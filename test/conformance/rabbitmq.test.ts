import { afterAll } from 'vitest';
import { trackedRabbitmq } from '../integration/rabbitmq/rabbitmq-test-kit.js';
import { describeTransportConformance } from './transport-conformance.js';

// The suite over a real broker (127.0.0.1:5672), once per queue type. Queues the suite declares
// are deleted afterwards; delay queues expire by themselves.
for (const queueType of ['quorum', 'classic'] as const) {
  const rabbit = trackedRabbitmq({ queueType });
  afterAll(() => rabbit.cleanup());
  describeTransportConformance(`rabbitmq (${queueType} queues)`, {
    definition: rabbit.definition,
    transportConfig: { ...rabbit.config, kind: 'rabbitmq' },
    patienceMs: 10_000,
    connect: () => rabbit.connect(),
  });
}
