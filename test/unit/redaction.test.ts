import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createBus, redactSecrets } from '../../src/index.js';
import {
  configSecrets,
  REDACT_PATHS,
  redactConnectionString,
  safeError,
  secretsOf,
  withSafeErrors,
} from '../../src/telemetry/logger.js';

/** A pino logger whose lines land in `lines`. */
function capture(options: pino.LoggerOptions = {}) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: pino(options, sink), lines };
}

describe('secret redaction', () => {
  it.each([
    ['amqp://guest:s3cret@rabbit:5672/vhost', 'amqp://guest:***@rabbit:5672/vhost'],
    ['postgres://app:p%40ss@db/test', 'postgres://app:***@db/test'],
    [
      'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=abc123=',
      'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=***',
    ],
    ['host=db password=hunter2 user=x', 'host=db password=*** user=x'],
  ])('hides the credential in %s', (input, expected) => {
    expect(redactSecrets(input)).toBe(expected);
  });

  // Each was shown in part or whole by the regular expression that stopped at the first `@` or space.
  it.each([
    [
      'cannot connect to RabbitMQ at amqp://guest:p@ss word@127.0.0.1:5672: refused',
      'cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:5672: refused',
    ],
    ['amqp://guest:pa ss@127.0.0.1:5672', 'amqp://guest:***@127.0.0.1:5672'],
    ['postgres://app:x@y@z@db:5432/test?sslmode=require', 'postgres://app:***@db:5432/test?sslmode=require'],
    ['two: amqp://u:a b@h1 and amqp://v:c@d@h2/', 'two: amqp://u:***@h1 and amqp://v:***@h2/'],
    ["host=db password='pa ss\\'w@rd' user=x", "host=db password='***' user=x"],
    ["host=db password = 'cut short", "host=db password = '***"],
    ['PGPASSWORD=a@b db_password=c;d', 'PGPASSWORD=*** db_password=***'],
    [
      'Endpoint=sb://ns/;SharedAccessKeyName=root;SharedAccessKey=k e@y=;EntityPath=q',
      'Endpoint=sb://ns/;SharedAccessKeyName=root;SharedAccessKey=***;EntityPath=q',
    ],
    [
      'Endpoint=sb://ns/;SharedAccessSignature=SharedAccessSignature sr=ns&sig=S1G%3D&se=1&skn=root',
      'Endpoint=sb://ns/;SharedAccessSignature=***',
    ],
    ['token: SharedAccessSignature sr=ns&sig=S1G%3D&se=1', 'token: SharedAccessSignature sr=ns&sig=***'],
    ['{"url":"x","password":"p\\"w","api_key":"k"}', '{"url":"x","password":"***","api_key":"***"}'],
    [
      "{ headers: { Authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': 'abc' } }",
      "{ headers: { Authorization: '***', 'x-api-key': '***' } }",
    ],
    ['request failed: Bearer eyJhbGciOi.J9x-y_z', 'request failed: Bearer ***'],
  ])('parses %s', (input, expected) => {
    expect(redactSecrets(input)).toBe(expected);
  });

  it.each([
    'amqp://rabbit:5672',
    'at load (file:///srv/node_modules/@azure/service-bus/dist/index.js:10:3)',
    'health trip refused: a bearer token is required',
    'key=order-1 tokens=3 SharedAccessKeyName=root',
  ])('leaves text without credentials alone: %s', (text) => {
    expect(redactSecrets(text)).toBe(text);
  });

  it('goes through a megabyte-long error text in one pass (a base64 body, a long identifier)', () => {
    // A pattern that restarted inside every run of letters took 14 s for 100 KB; a megabyte would
    // hold a consumer for hours. One pass takes milliseconds, far inside the test's timeout.
    for (const text of [
      'A'.repeat(1_000_000),
      'a-'.repeat(500_000),
      'x://'.repeat(250_000),
      'password=x'.repeat(100_000),
    ]) {
      const redacted = redactSecrets(text);
      expect(redacted.length).toBeLessThanOrEqual(text.length);
    }
    expect(redactSecrets(`${'A'.repeat(1_000_000)} amqp://u:p w@h`)).toMatch(/ amqp:\/\/u:\*\*\*@h$/);
  });

  it('masks known secrets wherever a client repeats them, raw or percent-encoded', () => {
    const url = 'amqp://guest:p@ss w0rd!@127.0.0.1:5672';
    const known = secretsOf(url);
    expect(known).toContain('p@ss w0rd!');
    expect(redactSecrets('login p@ss w0rd! refused (sent p%40ss%20w0rd!)', known)).toBe('login *** refused (sent ***)');
  });

  it('shows a connection string without its credential', () => {
    expect(redactConnectionString('amqp://guest:p@ss word@127.0.0.1:5672')).toBe('amqp://guest:***@127.0.0.1:5672');
    expect(redactConnectionString('amqp://u:p%40ss@h:1/v?password=x')).toBe('amqp://u:***@h:1/v?password=***');
    // Not a URL a parser accepts: everything before the last `@` may be credentials.
    expect(redactConnectionString('postgres://u:pa/ss@h/db')).toBe('postgres://***@h/db');
    expect(redactConnectionString('Endpoint=sb://ns/;SharedAccessKeyName=r;SharedAccessKey=K=;')).toBe(
      'Endpoint=sb://ns/;SharedAccessKeyName=r;SharedAccessKey=***;',
    );
    expect(redactConnectionString('amqp://rabbit:5672')).toBe('amqp://rabbit:5672');
  });

  it('censors secret fields in log lines', () => {
    const { logger, lines } = capture({ redact: { paths: REDACT_PATHS, censor: '***' } });
    logger.info({ transport: { url: 'amqp://u:p@h', password: 'x' }, token: 'abc' }, 'connecting');
    expect(lines.join('')).not.toMatch(/amqp:\/\/u:p@h|"x"|abc/);
    expect(lines.join('')).toMatch(/"url":"\*\*\*"/);
  });
});

describe('errors in log lines', () => {
  it('logs only type, message, stack, code and cause: never a property such as ERR_INVALID_URL input', () => {
    let invalid: unknown;
    try {
      new URL('postgres://app:pa#ss@db/test');
    } catch (error) {
      invalid = error;
    }
    expect((invalid as { input?: string }).input).toContain('pa#ss');
    const logged = safeError(invalid);
    expect(logged).toMatchObject({ type: 'TypeError', code: 'ERR_INVALID_URL' });
    expect(Object.keys(logged).sort()).toEqual(['code', 'message', 'stack', 'type']);
    expect(JSON.stringify(logged)).not.toContain('pa#ss');
  });

  it('drops an HTTP client error request config with its Authorization header', () => {
    const error = Object.assign(new Error('Request failed with status code 401'), {
      code: 'ERR_BAD_REQUEST',
      config: { url: 'https://api.example/x', headers: { Authorization: 'Bearer tok-123456', 'X-Api-Key': 'k-987' } },
      response: { status: 401, data: { detail: 'bad token tok-123456' } },
    });
    const text = JSON.stringify(safeError(error));
    expect(text).not.toMatch(/tok-123456|k-987/);
    expect(text).toContain('Request failed with status code 401');
  });

  it('redacts causes, bounded in depth even when they form a cycle', () => {
    const inner = new Error('connect failed for amqp://u:p@ss w@rd@rabbit:5672');
    const outer = new Error('start failed', { cause: inner });
    (inner as Error & { cause?: unknown }).cause = outer;
    const logged = safeError(outer);
    expect(logged.cause?.message).toBe('connect failed for amqp://u:***@rabbit:5672');
    expect(logged.cause?.cause?.cause).toBeUndefined();
    expect(JSON.stringify(logged)).not.toMatch(/ss w@rd/);
  });

  it('serializes err and error through safeError in a logger the application gave', () => {
    const { logger, lines } = capture();
    const error = Object.assign(new Error('boom: password=hunter2'), { input: 'amqp://u:hunter2@h' });
    const bus = withSafeErrors(logger.child({ app: 'orders' }));
    bus.warn({ err: error, error: 'amqp://u:pa ss@h failed' }, 'failed');
    bus.child({ endpoint: 'x' }).error({ err: { message: 'thrown object', headers: { authorization: 'x' } } }, 'x');
    bus.info({ err: safeError(error) }, 'already safe');
    const text = lines.join('');
    expect(text).not.toMatch(/hunter2|pa ss|authorization/);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      app: 'orders',
      err: { type: 'Error', message: 'boom: password=***' },
      error: 'amqp://u:***@h failed',
    });
    expect(JSON.parse(lines[1] as string).err).toEqual({ type: 'object', message: 'thrown object' });
    expect(JSON.parse(lines[2] as string).err.message).toBe('boom: password=***');
  });

  it('masks the configured secrets wherever an error logged by the bus repeats them', () => {
    expect(
      configSecrets({ url: 'amqp://u:p@ss w0rd@h', sasl: { password: 's3cret-pw' } }, [
        'url',
        'sasl.password',
        'tls.key',
      ]),
    ).toEqual(['amqp://u:p@ss w0rd@h', 'p%40ss%20w0rd', 'p@ss w0rd', 's3cret-pw']);
    const { logger, lines } = capture();
    const token = 'health-token-Zq8 with space';
    const bus = createBus({ health: { token } }, { logger });
    // As a driver error that quotes a credential without any key or URL around it.
    bus.logger.error({ err: new Error(`refused "${token}"`, { cause: new Error(`again: ${token}`) }) }, 'failed');
    bus.logger.child({ endpoint: 'x' }).warn({ error: `refused ${token}` }, 'failed');
    const text = lines.join('');
    expect(JSON.parse(lines[0] as string).err).toMatchObject({
      message: 'refused "***"',
      cause: { message: 'again: ***' },
    });
    expect(JSON.parse(lines[1] as string).error).toBe('refused ***');
    expect(text).not.toContain('Zq8');
  });
});
