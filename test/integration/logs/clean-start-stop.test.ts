// A clean start and stop logs no error and no warning, on every transport: operators alert on those
// levels. Each case captures every log line (the transport's client logs included) of two rounds of
// start, stop right away, start, handle one message, stop, with the same endpoint, so that the
// second round meets topology that already exists.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  type BusConfigInput,
  createBus,
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

interface Line {
  level: number;
  msg: string;
  [field: string]: unknown;
}

function capture(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const text of String(chunk).split('\n')) if (text) lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const rabbit = trackedRabbitmq();
const { clientLogLevel: _quiet, ...kafkaConfig } = testKafkaConfig;
let serviceBus: ServiceBusFixture | undefined;

type MakeBus = (logger: pino.Logger) => Promise<Bus>;
const plain =
  (transport: BusConfigInput['transport'], definition: TransportDefinition): MakeBus =>
  async (logger) =>
    createBus(
      { service: 'clean-logs', transport, shutdown: { signals: [], timeoutMs: 5_000 } },
      { transports: [definition], logger },
    );

const transports: [string, MakeBus][] = [
  ['memory', plain({ kind: 'memory' }, memoryTransport({ broker: createMemoryBroker() }) as TransportDefinition)],
  ['rabbitmq', plain(rabbit.config, rabbit.definition as TransportDefinition)],
  // The client's own log level left at its default (warn), as a service runs it.
  ['kafka', plain(kafkaConfig, kafkaTransport() as TransportDefinition)],
  [
    'servicebus',
    async (logger) => {
      serviceBus ??= await startServiceBusFixture();
      return serviceBus.bus('clean-logs', {}, logger);
    },
  ],
];

describe('a clean start and stop logs no error or warning', () => {
  afterAll(async () => {
    await serviceBus?.close();
    await rabbit.cleanup();
  }, 60_000);

  for (const [name, makeBus] of transports) {
    it(`${name}`, async () => {
      // Before: kafkajs logged at ERROR each time declare met an existing topic; Service Bus logged
      // a warning ("receiver reported an error") when a stop came before its receiver was up.
      const suffix = randomUUID().slice(0, 8);
      const Ping = defineMessage(`clean-logs.ping-${suffix}.v1`, z.object({ n: z.number() }));
      const endpoint = `clean-logs-${suffix}`;
      const { logger, lines } = capture();
      for (let round = 1; round <= 2; round++) {
        // Start and stop at once (a deploy that is rolled back, a readiness probe that fails).
        const quick = await makeBus(logger);
        quick.endpoint(endpoint, { unknownTypes: 'skippedQueue' }).handle(Ping, async () => {});
        await quick.start();
        await quick.stop();
        // Start, handle a message, stop.
        const bus = await makeBus(logger);
        const handled: number[] = [];
        bus.endpoint(endpoint, { unknownTypes: 'skippedQueue' }).handle(Ping, async ({ n }) => {
          handled.push(n);
        });
        await bus.start();
        await bus.publish(Ping, { n: round });
        await waitFor(() => handled.includes(round), { timeoutMs: 30_000, what: `message of round ${round}` });
        await bus.stop();
      }
      expect(lines.filter((l) => l.msg === 'bus started')).toHaveLength(4);
      const loud = lines
        .filter((l) => l.level >= 40)
        .map((l) => ({ level: l.level, msg: l.msg, err: l.err, error: l.error }));
      // The lines in full in the message: the diff shows only their first fields.
      expect(loud, JSON.stringify(loud)).toEqual([]);
    }, 120_000);
  }
});
