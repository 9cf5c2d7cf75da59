import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../src/index.js';
import { REDACT_PATHS } from '../../src/telemetry/logger.js';

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

  it('leaves text without credentials alone', () => {
    expect(redactSecrets('amqp://rabbit:5672')).toBe('amqp://rabbit:5672');
  });

  it('censors secret fields in log lines', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = pino({ redact: { paths: REDACT_PATHS, censor: '***' } }, sink);
    logger.info({ transport: { url: 'amqp://u:p@h', password: 'x' }, token: 'abc' }, 'connecting');
    expect(lines.join('')).not.toMatch(/amqp:\/\/u:p@h|"x"|abc/);
    expect(lines.join('')).toMatch(/"url":"\*\*\*"/);
  });
});
