import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, type ConsumerChange, createBus, defineMessage } from '../../../src/index.js';
import { notReadyBecause } from '../../../src/health/health-handler.js';
import { systemClock, type Transport } from '../../../src/transport-core/index.js';
import { KafkaTransportConfigSchema, kafkaTransport } from '../../../transports/kafka/index.js';
import { type KafkaProxy, type PrivateKafka, startPrivateKafka } from '../../infra/kafka/private-kafka.mjs';
import { waitFor } from '../../support/wait-for.js';
import { testKafkaConfig, unique } from './kafka-fixture.js';

// Issue 19 item 6. A broker that goes down while a member looks up its group coordinator (the first
// step of every join) makes kafkajs fail the join with KafkaJSGroupCoordinatorNotFound: not
// retriable, so kafkajs does not restart the member, and it stays dead while the bus says all is
// well. Left to chance (a plain broker restart) that hit 2 to 3 restarts in 6 on this machine, and
// fewer under load. Here it happens every time: the proxy in front of the private broker holds the
// member's coordinator lookup, and the broker restarts (SIGTERM, then start) while it waits.
const ROUNDS = 3;
const Ping = defineMessage('it.consumer-restart.ping.v1', z.object({ n: z.string() }));

describe('kafka: a group member that crashes for good is made again', () => {
  let kafka: PrivateKafka | undefined;
  const buses: Bus[] = [];
  beforeAll(async () => {
    kafka = await startPrivateKafka({ proxy: true });
  }, 180_000);
  afterEach(async () => {
    await Promise.allSettled(buses.splice(0).map((b) => b.stop()));
  }, 60_000);
  afterAll(async () => {
    await kafka?.remove();
  }, 60_000);

  /** A bus with one endpoint on the private broker; records what it consumed and each `consumer.down`. */
  function endpointBus(clientId: string) {
    const broker = kafka as PrivateKafka;
    const endpoint = unique('restart');
    const transport = { ...testKafkaConfig, brokers: broker.brokers, numPartitions: 1, replicationFactor: 1 };
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const bus = createBus(
      {
        service: 'kafka-restart',
        transport: { ...transport, clientId },
        endpoints: { [endpoint]: { consumerRestart: { initialDelayMs: 200, maxDelayMs: 2_000 } } },
        shutdown: { signals: [], timeoutMs: 5_000 },
      },
      { transports: [kafkaTransport()], logger },
    );
    buses.push(bus);
    const seen = new Set<string>();
    bus.endpoint(endpoint).handle(Ping, async (m) => {
      seen.add(m.n);
    });
    // What readiness said when the consumer went down (the event fires once the state changed).
    const downs: { change: ConsumerChange; ready: string[] }[] = [];
    bus.on('consumer.down', (change) => {
      downs.push({ change, ready: notReadyBecause(bus.health(), false) });
    });
    const consumer = () => bus.health().endpoints[endpoint]?.consumer;
    const sendAndSee = async (n: string) => {
      // Right after a restart the producer may need a few tries; the send is retried, not the check.
      await waitFor(
        () =>
          bus.send(endpoint, Ping, { n }).then(
            () => true,
            () => false,
          ),
        { timeoutMs: 60_000, intervalMs: 250, what: `sending ${n}` },
      );
      await waitFor(() => seen.has(n), {
        timeoutMs: 60_000,
        intervalMs: 50,
        what: () =>
          `${n} consumed; consumer ${JSON.stringify(consumer())}; downs: ${downs.map((d) => d.change.reason).join(' | ')}`,
      });
    };
    const coordinatorCrash = (from: number) =>
      downs.slice(from).some((d) => /group coordinator/i.test(d.change.reason ?? ''));
    return { bus, endpoint, transport, lines, downs, consumer, sendAndSee, coordinatorCrash };
  }

  it(
    'consumes again after the broker restarts during a rejoin (KafkaJSGroupCoordinatorNotFound); not ready meanwhile',
    async () => {
      const broker = kafka as PrivateKafka;
      const proxy = broker.proxy as KafkaProxy;
      const clientId = 'sluice-restart-rejoin';
      const { bus, endpoint, transport, lines, downs, consumer, sendAndSee, coordinatorCrash } = endpointBus(clientId);
      await bus.start();
      await sendAndSee('r0');

      for (let round = 1; round <= ROUNDS; round++) {
        const before = downs.length;
        const held = proxy.holdNextFindCoordinator(clientId);
        // Another member joins the group: the endpoint's member must rejoin, and its lookup is held.
        const other = kafkaTransport().create(
          KafkaTransportConfigSchema.parse({ ...transport, clientId: `sluice-restart-other-${round}` }),
          { logger: pino({ level: 'silent' }), clock: systemClock },
        );
        await other.connect();
        // A status listener turns kafkajs's own restart off for this member too: a restart racing the
        // close below could otherwise leave it in the group, holding the partition.
        const joining = other.consume(endpoint, () => {}, { prefetch: 1, onStatus: () => {} }).catch(() => undefined);
        await held;
        await broker.stop();
        await broker.start();
        await closeQuietly(other, joining);
        await sendAndSee(`r${round}`);
        expect(
          coordinatorCrash(before),
          `round ${round}: ${
            downs
              .slice(before)
              .map((d) => d.change.reason)
              .join(' | ') || 'no crash'
          }`,
        ).toBe(true);
      }

      for (const { change, ready } of downs) {
        expect(change.endpoint).toBe(endpoint);
        expect(ready).toContainEqual(
          expect.stringMatching(new RegExp(`^endpoint ${endpoint}: consumer restarting since `)),
        );
      }
      expect(consumer()).toMatchObject({ state: 'consuming' });
      expect(consumer()?.restarts).toBeGreaterThanOrEqual(ROUNDS);
      expect(notReadyBecause(bus.health(), false)).toEqual([]);
      // The crash was said, with its cause, at error level.
      expect(lines.some((l) => l.includes('consumer stopped on its own') && /group coordinator/i.test(l))).toBe(true);
    },
    10 * 60_000,
  );

  it(
    'a new member whose first join the broker restart breaks: start succeeds, not ready until it consumes',
    async () => {
      const broker = kafka as PrivateKafka;
      const proxy = broker.proxy as KafkaProxy;
      const clientId = 'sluice-restart-first-join';
      const { bus, endpoint, consumer, sendAndSee, coordinatorCrash } = endpointBus(clientId);
      // bus.start() declares (no coordinator lookup), then the member joins: its lookup is held.
      const held = proxy.holdNextFindCoordinator(clientId);
      const starting = bus.start();
      await held;
      await broker.stop();
      await starting; // the crash of the first join does not fail the start
      expect(coordinatorCrash(0)).toBe(true);
      expect(consumer()?.state).toBe('restarting');
      expect(notReadyBecause(bus.health(), false)).toContainEqual(
        expect.stringMatching(`^endpoint ${endpoint}: consumer restarting since `),
      );
      await broker.start();
      await sendAndSee('after');
      expect(consumer()).toMatchObject({ state: 'consuming', restarts: 1 });
    },
    5 * 60_000,
  );
});

async function closeQuietly(transport: Transport, joining: Promise<unknown>): Promise<void> {
  await transport.close().catch(() => {});
  const consumer = await joining;
  if (consumer && typeof consumer === 'object' && 'close' in consumer) {
    await (consumer as { close(): Promise<void> }).close().catch(() => {});
  }
}
