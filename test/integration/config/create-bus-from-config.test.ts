import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, ConfigError, createBusFromConfig, defineMessage, loadConfig } from '../../../src/index.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { waitFor } from '../../support/wait-for.js';

const Ping = defineMessage('test.config.ping.v1', z.object({ n: z.number() }));
const here = fileURLToPath(new URL('.', import.meta.url));
const unique = () => Math.random().toString(36).slice(2, 10);

describe('createBusFromConfig: broker and inbox store chosen by configuration alone', () => {
  let bus: Bus<unknown> | undefined;
  afterEach(async () => {
    await bus?.stop();
    bus = undefined;
  });

  it('runs on RabbitMQ with the SQLite inbox from SLUICE_* variables, with no definition in code', async () => {
    const env = {
      SLUICE_TRANSPORT__KIND: 'rabbitmq',
      SLUICE_TRANSPORT__URL: 'amqp://guest:guest@127.0.0.1:5672',
      SLUICE_INBOX__KIND: 'sqlite',
      SLUICE_INBOX__PATH: join(mkdtempSync(join(tmpdir(), 'sluice-config-')), 'inbox.db'),
      SLUICE_SHUTDOWN__SIGNALS: '[]',
      SLUICE_LOGGING__LEVEL: 'silent',
    };
    bus = await createBusFromConfig(loadConfig({ env }));
    const endpoint = `config-${unique()}`;
    const seen: number[] = [];
    let hadTx = false;
    bus.endpoint(endpoint).handle(Ping, (message, ctx) => {
      hadTx = ctx.tx !== undefined;
      seen.push(message.n);
    });
    await bus.start();
    expect(bus.transport.kind).toBe('rabbitmq');
    expect(bus.inbox?.kind).toBe('sqlite');
    const id = await bus.send(endpoint, Ping, { n: 7 });
    await waitFor(async () => (await bus?.inbox?.find(endpoint, id)) !== undefined);
    expect(seen).toEqual([7]);
    expect(hadTx).toBe(true);
  });

  it('loads the PostgreSQL inbox by kind', async () => {
    bus = await createBusFromConfig({
      transport: { kind: 'memory' },
      inbox: {
        kind: 'postgres',
        connectionString: 'postgres://postgres@127.0.0.1:5432/test',
        schema: TEST_SCHEMA,
        table: `inbox_${unique()}`,
      },
      shutdown: { signals: [] },
      logging: { level: 'silent' },
    });
    const seen: number[] = [];
    bus.endpoint('pg-by-config').handle(Ping, (message) => {
      seen.push(message.n);
    });
    await bus.start();
    expect(bus.inbox?.kind).toBe('postgres');
    await bus.send('pg-by-config', Ping, { n: 1 });
    await waitFor(() => seen.length === 1);
  });

  it('loads Kafka and Service Bus by kind and checks their configuration with their own schema', async () => {
    const kafka = await createBusFromConfig({ transport: { kind: 'kafka', brokers: ['127.0.0.1:9092'] } });
    expect(kafka.transport.kind).toBe('kafka');
    await expect(createBusFromConfig({ transport: { kind: 'servicebus' } })).rejects.toThrow(
      /transport\.connectionString/,
    );
  });

  it('names the kinds it knows when the kind is unknown', async () => {
    await expect(createBusFromConfig({ transport: { kind: 'nats' } })).rejects.toThrow(ConfigError);
    await expect(createBusFromConfig({ transport: { kind: 'nats' } })).rejects.toThrow(
      /transport\.kind: unknown transport "nats"; known: memory, rabbitmq, kafka, servicebus/,
    );
    await expect(createBusFromConfig({ inbox: { kind: 'redis' } })).rejects.toThrow(
      /inbox\.kind: unknown inbox store "redis"; known: memory, sqlite, postgres/,
    );
  });

  it.each([
    ['amqplib', { SLUICE_TRANSPORT__KIND: 'rabbitmq' }, /transport\.kind: "rabbitmq" needs the package "amqplib"/],
    ['kafkajs', { SLUICE_TRANSPORT__KIND: 'kafka' }, /transport\.kind: "kafka" needs the package "kafkajs"/],
    [
      'pg',
      { SLUICE_INBOX__KIND: 'postgres', SLUICE_INBOX__CONNECTION_STRING: 'postgres://x@127.0.0.1/db' },
      /inbox\.kind: "postgres" needs the package "pg"/,
    ],
    ['better-sqlite3', { SLUICE_INBOX__KIND: 'sqlite' }, /inbox\.kind: "sqlite" needs the package "better-sqlite3"/],
  ])('fails with a ConfigError naming the package to install when %s is missing', (hidden, env, expected) => {
    const result = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        join(here, 'fixtures/without-package.mjs'),
        join(here, 'fixtures/build-from-env.ts'),
      ],
      { env: { ...process.env, ...env, SLUICE_TEST_HIDE: hidden }, encoding: 'utf8', timeout: 60_000 },
    );
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.stdout).toMatch(/^ConfigError: /);
    expect(result.stdout).toMatch(expected);
    expect(result.stdout).toContain(`npm install ${hidden}`);
  });
});
