import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { type PrivateKafka, startPrivateKafka } from '../infra/kafka/private-kafka.mjs';
import { FaultBench } from './fault-bench.js';

/**
 * The Kafka broker restarted under load (issue 19's fault suite), on a private broker of this file
 * — never the shared one on 9092: stopped cleanly (SIGTERM) and killed (SIGKILL, a crash). Half the
 * messages are sent before, half from the moment the broker is down (a send that failed is sent
 * again, same id); the consumer's PostgreSQL inbox is on the shared server.
 *
 * The kill switch must NOT trip here: a broker restart does not reach the handler path. Fetches
 * stop; the consumer reconnects and rejoins its group (restarted by the bus's supervisor if kafkajs
 * gives up); offsets that were not committed before the broker went away are read again, and the
 * inbox skips what was already applied. No handler fails, so no outcome reaches the switch as a
 * failure.
 */
describe('fault: the Kafka broker restarts under load', () => {
  let kafka: PrivateKafka | undefined;
  let bench: FaultBench | undefined;
  beforeAll(async () => {
    kafka = await startPrivateKafka();
  }, 180_000);
  afterEach(async () => {
    await bench?.close();
    bench = undefined;
  }, 60_000);
  afterAll(async () => {
    await kafka?.remove();
  }, 60_000);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`a restart (${signal}, 3 s down, start) loses nothing, applies nothing twice, dead-letters only poison`, async () => {
      const broker = kafka as PrivateKafka;
      bench = await FaultBench.start({ transport: { kind: 'kafka', brokers: broker.brokers }, database: 'shared' });
      await bench.brokerFault(`kafka restart (${signal})`, {
        total: 2_000,
        downMs: 3_000,
        stop: () => broker.stop({ signal }),
        start: () => broker.start(),
      });
    }, 180_000);
  }
});
