import pino from 'pino';
import { createMemoryBroker, memoryTransport } from '../../src/index.js';
import { systemClock } from '../../src/internal/clock.js';
import { describeTransportConformance } from './transport-conformance.js';

const broker = createMemoryBroker({ lockTimeoutMs: 30_000 });
const definition = memoryTransport({ broker });

describeTransportConformance('memory', {
  definition,
  transportConfig: { kind: 'memory' },
  async connect() {
    const transport = definition.create(
      { kind: 'memory', lockTimeoutMs: 30_000 },
      { logger: pino({ level: 'silent' }), clock: systemClock },
    );
    await transport.connect();
    return transport;
  },
});
