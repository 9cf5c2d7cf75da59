import { createMemoryBroker, memoryTransport } from 'sluice';
import { runTransportConformance } from 'sluice/testing/conformance';

// The kit as a transport author calls it: the public entry point, the transport's definition and
// config, its declared capabilities.
const broker = createMemoryBroker({ lockTimeoutMs: 30_000 });

runTransportConformance({
  name: 'memory',
  definition: memoryTransport({ broker }),
  config: { kind: 'memory', lockTimeoutMs: 30_000 },
  capabilities: { publish: true, competingConsumers: true, deadLetterManagement: true },
});
