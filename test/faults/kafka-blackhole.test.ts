import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TransportError } from '../../src/index.js';
import { connectKafka } from '../integration/kafka/kafka-fixture.js';
import { type PrivateKafka, startPrivateKafka } from '../infra/kafka/private-kafka.mjs';
import { FaultBench } from './fault-bench.js';

/** kafkajs's request timeout here: a request to the hung broker fails after this, not after 30 s. */
const REQUEST_TIMEOUT_MS = 4_000;

/**
 * The Kafka broker hangs under load (the black hole of the fault suite): its process is frozen
 * (SIGSTOP), so connections stay open, the kernel still accepts new ones, and nothing answers — no
 * reset, no refusal, as a broker stuck in a long GC pause or a network that drops packets. On a
 * private broker of this file, never the shared one on 9092.
 *
 * The hang is longer than the client's request timeout (requests to the broker time out: sends are
 * retried by kafkajs) and than the group's session timeout (6 s: when the broker runs again it has
 * expired the member, whose commits and heartbeats are refused until it has joined again). Nothing
 * may be lost, applied twice or dead-lettered for it; the kill switch must not trip (no handler
 * fails); the consumer must be consuming at the end; `bus.stop()` must return in its time while the
 * broker is still hung; and what the transport asks of a hung broker fails as a `TransportError`.
 */
describe('fault: the Kafka broker hangs (SIGSTOP)', () => {
  let kafka: PrivateKafka | undefined;
  let bench: FaultBench | undefined;
  beforeAll(async () => {
    kafka = await startPrivateKafka();
  }, 180_000);
  afterEach(async () => {
    kafka?.thaw();
    await bench?.close();
    bench = undefined;
  }, 60_000);
  afterAll(async () => {
    await kafka?.remove();
  }, 60_000);

  const transport = () => ({
    kind: 'kafka' as const,
    brokers: (kafka as PrivateKafka).brokers,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });

  it('hung for 12 s under load: loses nothing, applies nothing twice, dead-letters only poison', async () => {
    const broker = kafka as PrivateKafka;
    bench = await FaultBench.start({ transport: transport(), database: 'shared' });
    await bench.brokerFault('kafka hung (SIGSTOP 12 s)', {
      total: 2_000,
      downMs: 12_000,
      stop: async () => broker.freeze(),
      start: async () => broker.thaw(),
    });
  }, 240_000);

  it('bus.stop() returns in its time while the broker is hung, and what it left is read again', async () => {
    const broker = kafka as PrivateKafka;
    bench = await FaultBench.start({ transport: transport(), database: 'shared' });
    // A new member of the group, once the broker runs again, reads what the stopped one had not
    // committed; the inbox skips what was applied.
    const tookMs = await bench.stopWhileHung(broker, { total: 600 });
    console.info(`kafka hung: bus.stop() took ${tookMs} ms`);
  }, 240_000);

  it("declaring an endpoint's topics while the broker is hung fails with TransportError naming them", async () => {
    const broker = kafka as PrivateKafka;
    const transport = await connectKafka({ brokers: broker.brokers, requestTimeoutMs: 1_000 });
    try {
      broker.freeze();
      const error = await transport
        .declare({ address: 'hung-declare', endpoint: 'hung-declare', messageTypes: [] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransportError);
      expect((error as Error).message).toMatch(/^checking or creating topics hung-declare, .* failed: /);
    } finally {
      broker.thaw();
      await transport.close();
    }
  }, 240_000);
});
