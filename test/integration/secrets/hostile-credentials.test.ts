import { randomInt } from 'node:crypto';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type BusConfigInput,
  createBus,
  defineMessage,
  systemClock,
  type TransportDefinition,
} from '../../../src/index.js';
import { postgresInbox } from '../../../src/inbox/postgres/index.js';
import { safeError, withSafeErrors } from '../../../src/telemetry/logger.js';
import { kafkaTransport } from '../../../transports/kafka/index.js';
import { serviceBusTransport } from '../../../transports/servicebus/index.js';
import { startServiceBusEmulator } from '../../infra/servicebus/start-service-bus-emulator.js';
import { waitFor } from '../../support/wait-for.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { rabbitmqctl, trackedRabbitmq, unique } from '../rabbitmq/rabbitmq-test-kit.js';
import { emulatorAdministration } from '../servicebus/emulator-administration.js';

/**
 * Credentials with the characters that broke the old regular expression (a raw `@`, a space, a
 * `:`), made of words that appear nowhere else: no hex (ids, hashes) and no base64 run could hold
 * them by chance.
 */
function hostile(): { secret: string; words: string[] } {
  const word = () =>
    `Kq${Array.from({ length: 8 }, () => 'ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ'[randomInt(40)]).join('')}`;
  const words = [word(), word(), word()];
  return { secret: `${words[0]}@${words[1]} ${words[2]}:!`, words };
}

/** Every log line, at trace level. */
function capturingLogger(): { logger: Logger; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: pino({ level: 'trace' }, stream), text: () => lines.join('') };
}

/** None of the secret's words in any text an operator could see. */
function expectNoneOf(words: readonly string[], ...texts: string[]): void {
  const all = texts.join('\n');
  for (const word of words) expect(all).not.toContain(word);
}

/** The error as the application would log it, and as Sluice logs it. */
const shown = (error: unknown) =>
  `${String(error)}\n${(error as Error).stack}\n${JSON.stringify(safeError(error))}\n${JSON.stringify(pino.stdSerializers.err(error as Error))}`;

const Ping = defineMessage('secrets.ping.v1', z.object({ n: z.number() }));
const quiet: BusConfigInput = { shutdown: { signals: [], timeoutMs: 2_000 } };

describe('credentials never reach an error message or a log line', () => {
  const buses: { stop(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.stop()));
  });

  describe('RabbitMQ, a password with a raw @, a space and a colon', () => {
    const user = unique('sluice-hostile');
    const { secret, words } = hostile();
    const rabbit = trackedRabbitmq({ reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
    beforeAll(async () => {
      await rabbitmqctl('add_user', user, secret);
      await rabbitmqctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
    });
    afterAll(async () => {
      await Promise.allSettled(buses.map((b) => b.stop()));
      await rabbit.cleanup();
      await rabbitmqctl('delete_user', user).catch(() => {});
    });
    const busWith = (password: string, logger: Logger) => {
      const b = createBus(
        { ...quiet, transport: { ...rabbit.config, url: `amqp://${user}:${password}@127.0.0.1:5672` } },
        { transports: [rabbit.definition], logger },
      );
      buses.push(b);
      return b;
    };

    it('connects with it as written, and logs the broker without it', async () => {
      const { logger, text } = capturingLogger();
      const b = busWith(secret, logger);
      const got: number[] = [];
      b.endpoint(unique('hostile-ok')).handle(Ping, async (m) => {
        got.push(m.n);
      });
      await b.start();
      await b.publish(Ping, { n: 1 });
      await waitFor(() => got.length === 1, { what: 'the message' });
      await b.stop();
      expect(text()).toContain(`amqp://${user}:***@127.0.0.1:5672`);
      expectNoneOf(words, text());
    });

    it('fails to start with a wrong one, naming the broker but not the password', async () => {
      const { logger, text } = capturingLogger();
      const b = busWith(`${secret}-wrong`, logger);
      b.endpoint(unique('hostile-refused')).handle(Ping, async () => {});
      const error = await b.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(
        new RegExp(`^cannot connect to RabbitMQ at amqp://${user}:\\*\\*\\*@127\\.0\\.0\\.1:5672: .*ACCESS-REFUSED`),
      );
      expectNoneOf(words, shown(error), text());
    });
  });

  describe('PostgreSQL inbox, the same kind of password', () => {
    const { secret, words } = hostile();
    const busWith = (connectionString: string, logger: Logger) => {
      const b = createBus(
        {
          ...quiet,
          inbox: {
            kind: 'postgres',
            connectionString,
            schema: TEST_SCHEMA,
            table: `hostile_${randomInt(1e9)}`,
            poolSize: 2,
            // Start-up waits for an unreachable store (logging each failure): a short wait keeps the
            // test quick and still shows those log lines.
            startupWaitMs: 1_500,
          },
        },
        { inbox: postgresInbox(), logger },
      );
      buses.push(b);
      return b;
    };

    it('works with it (trust authentication accepts any password) and never logs it', async () => {
      const { logger, text } = capturingLogger();
      const b = busWith(`postgres://postgres:${secret}@127.0.0.1:5432/test`, logger);
      const got: number[] = [];
      b.endpoint(unique('pg-hostile')).handle(Ping, async (m) => {
        got.push(m.n);
      });
      await b.start();
      await b.publish(Ping, { n: 1 });
      await waitFor(() => got.length === 1, { what: 'the message' });
      await b.stop();
      expectNoneOf(words, text());
    });

    it.each([
      ['a port nobody listens on', `postgres://postgres:${secret}@127.0.0.1:1/test`],
      ['a URL the parser refuses (a raw #)', `postgres://postgres:${secret}#x@127.0.0.1:5432/test`],
    ])('fails to start on %s without showing it', async (_what, connectionString) => {
      const { logger, text } = capturingLogger();
      const b = busWith(connectionString, logger);
      b.endpoint(unique('pg-hostile-bad')).handle(Ping, async () => {});
      const error = await b.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expectNoneOf(words, shown(error), text());
    });
  });

  describe('Service Bus (local emulator over real AMQP), a key with spaces, an @ and =', () => {
    const { secret, words } = hostile();
    const key = `${secret}==`;
    let emulator: Awaited<ReturnType<typeof startServiceBusEmulator>>;
    let definition: TransportDefinition;
    beforeAll(async () => {
      emulator = await startServiceBusEmulator({ port: 0, sasKey: key });
      definition = serviceBusTransport({
        administration: emulatorAdministration(() => emulator),
      }) as TransportDefinition;
    });
    afterAll(async () => {
      await Promise.allSettled(buses.map((b) => b.stop()));
      await emulator?.close();
    });
    const connectionStringWith = (sasKey: string) =>
      `Endpoint=sb://${emulator.host}:${emulator.port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${sasKey};UseDevelopmentEmulator=true`;
    const busWith = (sasKey: string, logger: Logger) => {
      const connectionString = connectionStringWith(sasKey);
      const b = createBus(
        {
          ...quiet,
          transport: {
            kind: 'servicebus',
            connectionString,
            entities: 'create',
            operationTimeoutMs: 5_000,
            maxRetries: 0,
          },
        },
        { transports: [definition], logger },
      );
      buses.push(b);
      return b;
    };

    it('authenticates with it and never logs it', async () => {
      const { logger, text } = capturingLogger();
      const b = busWith(key, logger);
      const got: number[] = [];
      b.endpoint(unique('sb-hostile')).handle(Ping, async (m) => {
        got.push(m.n);
      });
      await b.start();
      await b.publish(Ping, { n: 1 });
      await waitFor(() => got.length === 1, { timeoutMs: 20_000, what: 'the message' });
      await b.stop();
      expectNoneOf(words, text());
    });

    it('is refused with a wrong one: neither the send error nor the consumer error shows it', async () => {
      const { logger, text } = capturingLogger();
      const wrong = hostile();
      const queue = unique('sb-hostile-refused');
      emulator.createQueue({ name: queue });
      // The transport itself, with the logger a bus gives it: a bus's graceful stop would wait for
      // the SDK's receiver, which is never authorized (the SDK gives up after 30 s).
      const transport = definition.create(
        definition.configSchema.parse({
          kind: 'servicebus',
          connectionString: connectionStringWith(`${wrong.secret}==`),
          operationTimeoutMs: 5_000,
          maxRetries: 0,
        }),
        { logger: withSafeErrors(logger), clock: systemClock },
      );
      await transport.connect();
      await transport.consume(queue, () => {}, { prefetch: 1 });
      const error = await transport
        .send(queue, {
          messageId: 'm-1',
          body: Buffer.from('{}'),
          headers: {},
          contentType: 'application/json',
          key: undefined,
          messageType: Ping.type,
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(/InvalidSignature/);
      await waitFor(() => text().includes('InvalidSignature') && text().includes('"err"'), {
        what: 'the consumer logging its refusal',
      });
      await transport.close();
      expectNoneOf([...words, ...wrong.words], shown(error), text());
    });
  });

  describe('Kafka, SASL settings against the real broker', () => {
    it('fails to start (the broker has no SASL listener) without showing the password, even at debug level', async () => {
      const { logger, text } = capturingLogger();
      const { secret, words } = hostile();
      const b = createBus(
        {
          ...quiet,
          transport: {
            kind: 'kafka',
            clientLogLevel: 'debug',
            connectionTimeoutMs: 3_000,
            sasl: { mechanism: 'plain', username: 'sluice', password: secret },
          },
        },
        { transports: [kafkaTransport() as TransportDefinition], logger },
      );
      buses.push(b);
      b.endpoint(unique('kafka-hostile')).handle(Ping, async () => {});
      const error = await b.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect(text()).toContain('"sasl":true');
      expectNoneOf(words, shown(error), text());
    });
  });
});
