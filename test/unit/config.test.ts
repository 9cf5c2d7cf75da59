import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, createBus, defineMessage, loadConfig, RegistrationError } from '../../src/index.js';
import { postgresInbox } from '../../src/inbox/postgres/index.js';
import { sqliteInbox } from '../../src/inbox/sqlite/index.js';

const silent = pino({ level: 'silent' });
const issuesOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  }
  throw new Error('expected a ConfigError');
};

describe('configuration', () => {
  it('accepts an empty config: memory transport and defaults', () => {
    const bus = createBus({}, { logger: silent });
    expect(bus.transport.kind).toBe('memory');
  });

  it('names an unknown top-level field and lists the allowed ones', () => {
    expect(issuesOf(() => createBus({ transprt: { kind: 'memory' } } as never))).toEqual([
      'transprt: unknown field; allowed: service, transport, logging, shutdown, inbox, outbox, history, endpoints, health, retrySigningKey',
    ]);
  });

  it('names an unknown transport kind and lists the registered ones', () => {
    const [issue] = issuesOf(() => createBus({ transport: { kind: 'rabit' } }));
    expect(issue).toMatch(/^transport\.kind: unknown transport "rabit"; registered: memory/);
  });

  it('validates the transport section with the transport’s own schema, prefixing the path', () => {
    expect(issuesOf(() => createBus({ transport: { kind: 'memory', lockTimeoutMs: 'soon' } }))).toEqual([
      'transport.lockTimeoutMs: Invalid input: expected number, received string',
    ]);
    const [unknown] = issuesOf(() => createBus({ transport: { kind: 'memory', lockTimeout: 5 } }));
    expect(unknown).toBe('transport.lockTimeout: unknown field; allowed: kind, lockTimeoutMs');
  });

  it('names an enum field and its allowed values', () => {
    const [issue] = issuesOf(() => createBus({ logging: { level: 'loud' } } as never));
    expect(issue).toMatch(
      /^logging\.level: Invalid option: expected one of "fatal"\|"error"\|"warn"\|"info"\|"debug"\|"trace"\|"silent"/,
    );
  });

  it('names the endpoint and field of a bad endpoint setting, from config or code', () => {
    const [issue] = issuesOf(() => createBus({ endpoints: { billing: { concurrency: 0 } } }, { logger: silent }));
    expect(issue).toMatch(/^endpoints\.billing\.concurrency: Too small: expected number to be >=1/);
    const other = createBus({}, { logger: silent });
    const [retry] = issuesOf(() => other.endpoint('x', { retry: { kind: 'intervals', delaysMs: [100, 0] } }));
    expect(retry).toMatch(/^endpoints\.x\.retry\.delaysMs\.1: Too small/);
  });

  it('refuses a table name PostgreSQL would cut to another relation’s name, or a reserved word, naming the field', () => {
    const inbox = { kind: 'postgres', connectionString: 'postgres://x@127.0.0.1/db', table: 'i'.repeat(40) };
    expect(issuesOf(() => createBus({ inbox }, { inbox: postgresInbox(), logger: silent }))).toEqual([
      expect.stringMatching(/^inbox\.table: at most 39 characters: .*"<table>_versions_tombstones_idx"/),
    ]);
    const names = { inbox: { kind: 'sqlite', path: ':memory:' }, outbox: { table: 'o'.repeat(48) } };
    expect(issuesOf(() => createBus(names, { inbox: sqliteInbox(), logger: silent }))).toEqual([
      expect.stringMatching(/^outbox\.table: at most 47 characters/),
    ]);
    const history = { inbox: { kind: 'sqlite', path: ':memory:' }, history: { table: 'h'.repeat(52) } };
    expect(issuesOf(() => createBus(history, { inbox: sqliteInbox(), logger: silent }))).toEqual([
      expect.stringMatching(/^history\.table: at most 51 characters/),
    ]);
    // A reserved word: the stores write names unquoted.
    expect(
      issuesOf(() =>
        createBus(
          { inbox: { ...inbox, table: 'orders_inbox', schema: 'user' } },
          { inbox: postgresInbox(), logger: silent },
        ),
      ),
    ).toEqual([expect.stringMatching(/^inbox\.schema: a word SQL reserves/)]);
    // At the limit: accepted.
    createBus({ inbox: { ...inbox, table: 'i'.repeat(39) } }, { inbox: postgresInbox(), logger: silent });
  });

  it('names a bad consumer restart backoff of an endpoint', () => {
    expect(
      issuesOf(() =>
        createBus(
          { endpoints: { billing: { consumerRestart: { initialDelayMs: 5_000, maxDelayMs: 1_000 } } } },
          { logger: silent },
        ),
      ),
    ).toEqual(['endpoints.billing.consumerRestart.maxDelayMs: maxDelayMs must be at least initialDelayMs']);
    const [zero] = issuesOf(() =>
      createBus({ endpoints: { billing: { consumerRestart: { attemptTimeoutMs: 0 } } } }, { logger: silent }),
    );
    expect(zero).toMatch(/^endpoints\.billing\.consumerRestart\.attemptTimeoutMs: Too small/);
  });

  it('fails at start when config names an endpoint the code never declared', async () => {
    const Ping = defineMessage('test.ping.v1', z.object({}));
    const bus = createBus({ endpoints: { billng: { concurrency: 2 } }, shutdown: { signals: [] } }, { logger: silent });
    bus.endpoint('billing').handle(Ping, () => {});
    await expect(bus.start()).rejects.toThrow(RegistrationError);
    await expect(bus.start()).rejects.toThrow(
      /endpoints\.billng: configured, but no endpoint "billng" is declared in code; declared: billing/,
    );
  });

  it('reads SLUICE_* environment variables over the file, converting names and values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    const file = join(dir, 'sluice.json');
    writeFileSync(file, JSON.stringify({ service: 'from-file', transport: { kind: 'memory', lockTimeoutMs: 1000 } }));
    const loaded = loadConfig({
      env: {
        SLUICE_CONFIG: file,
        SLUICE_TRANSPORT__LOCK_TIMEOUT_MS: '5000',
        SLUICE_LOGGING__LEVEL: 'debug',
        SLUICE_SHUTDOWN__SIGNALS: '["SIGTERM"]',
        OTHER: 'ignored',
      },
    });
    expect(loaded.config).toEqual({
      service: 'from-file',
      transport: { kind: 'memory', lockTimeoutMs: 5000 },
      logging: { level: 'debug' },
      shutdown: { signals: ['SIGTERM'] },
    });
  });

  it('names the environment variable behind a bad field', () => {
    const loaded = loadConfig({ env: { SLUICE_TRANSPORT__LOCK_TIMEOUT_MS: 'abc', SLUICE_TRANSPRT__KIND: 'x' } });
    const issues = issuesOf(() => createBus(loaded, { logger: silent }));
    expect(issues).toContain(
      'transprt: unknown field (from SLUICE_TRANSPRT__KIND); allowed: service, transport, logging, shutdown, inbox, outbox, history, endpoints, health, retrySigningKey',
    );
    const second = issuesOf(() =>
      createBus(loadConfig({ env: { SLUICE_TRANSPORT__KIND: 'memory', SLUICE_TRANSPORT__LOCK_TIMEOUT_MS: 'abc' } }), {
        logger: silent,
      }),
    );
    expect(second).toEqual([
      'transport.lockTimeoutMs: Invalid input: expected number, received string (from SLUICE_TRANSPORT__LOCK_TIMEOUT_MS)',
    ]);
  });

  it('keeps an environment value that looks like a number as text where the field wants a string', () => {
    const env = {
      SLUICE_SERVICE: '2026',
      SLUICE_HEALTH__TOKEN: '1234567890123456',
      SLUICE_HEALTH__READ_TOKEN: '6543210987654321',
      SLUICE_RETRY_SIGNING_KEY: '99999999999999999999',
      SLUICE_INBOX__KIND: 'sqlite',
      SLUICE_INBOX__PATH: '12345',
      SLUICE_ENDPOINTS__BILLING__ADDRESS: '42',
      SLUICE_HEALTH__PORT: '0',
    };
    // Before: "health.token: expected string, received number (from SLUICE_HEALTH__TOKEN)", and so on.
    const bus = createBus(loadConfig({ env }), { logger: silent, inbox: sqliteInbox() });
    expect(() => bus.endpoint('billing')).not.toThrow();
    // A number is still wanted as a number, and a word where a number belongs is still an error.
    expect(issuesOf(() => createBus(loadConfig({ env: { SLUICE_HEALTH__PORT: 'x' } }), { logger: silent }))).toEqual([
      'health.port: Invalid input: expected number, received string (from SLUICE_HEALTH__PORT)',
    ]);
  });

  it('reports a config file that is not JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{ service: ');
    expect(() => loadConfig({ file, env: {} })).toThrow(/bad\.json: not valid JSON/);
  });

  it('does not quote a broken config file in its error: the text may hold a secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    const file = join(dir, 'secret.json');
    for (const text of ['{"health": {"token": sup3rsecretvalue0123}}', '{"transport": {"url": amqp://u:p@ss@h}}']) {
      writeFileSync(file, text);
      const message = (() => {
        try {
          loadConfig({ file, env: {} });
        } catch (error) {
          return (error as Error).message;
        }
        return '';
      })();
      expect(message).toMatch(/secret\.json: not valid JSON: Unexpected token/);
      expect(message).not.toMatch(/sup3r|amqp|p@ss/);
    }
  });

  it('rejects a malformed message type name at definition', () => {
    expect(() => defineMessage('has space', z.object({}))).toThrow(RegistrationError);
  });

  it('rejects a second handler for the same type on one endpoint', () => {
    const Ping = defineMessage('test.ping.v1', z.object({}));
    const bus = createBus({}, { logger: silent });
    const endpoint = bus.endpoint('a').handle(Ping, () => {});
    expect(() => endpoint.handle(Ping, () => {})).toThrow(/already has a handler for "test.ping.v1"/);
  });
});

describe('endpoint settings from config and code', () => {
  it('overrides only the fields the config gives, keeping the code’s other options', () => {
    const bus = createBus(
      { endpoints: { billing: { concurrency: 2 } }, shutdown: { signals: [] } },
      { logger: pino({ level: 'silent' }) },
    );
    bus.endpoint('billing', { retry: { kind: 'immediate', retries: 7 }, prefetch: 9, concurrency: 5 });
    const settings = bus.endpointSettings('billing');
    expect(settings.concurrency).toBe(2);
    expect(settings.prefetch).toBe(9);
    expect(settings.retry).toEqual({ kind: 'immediate', retries: 7 });
  });
});
