import pino, { type Logger } from 'pino';
import { redactSecrets } from '../internal/redact.js';
import { errorSerializer, safeError } from './safe-error.js';

export { redactConnectionString, redactSecrets, secretsOf } from '../internal/redact.js';
export { configSecrets } from './config-secrets.js';
export { errorSerializer, type LoggedError, safeError } from './safe-error.js';

/** Field paths pino redacts in every log line of the root logger. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'connectionString',
  '*.connectionString',
  'url',
  '*.url',
  'token',
  '*.token',
  'readToken',
  '*.readToken',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
];

/** The serializers every logger of a bus uses: `err` and `error` fields go through `safeError`. */
export const ERROR_SERIALIZERS = { err: errorSerializer, error: errorSerializer } as const;

/** The root logger when the application gives none: JSON to stdout, secrets redacted. */
export function createRootLogger(level: string, service: string): Logger {
  return pino({
    name: 'sluice',
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '***' },
    serializers: ERROR_SERIALIZERS,
  });
}

/**
 * The logger a bus works with: a child of the given one whose `err` and `error` fields are logged
 * as `safeError`s (type, message, stack, code, cause; credentials redacted), whichever logger the
 * application passed. `known` are the configuration's secrets (`configSecrets`), masked wherever
 * such a field repeats them. The logger's other serializers and its redaction settings are kept.
 */
export function withSafeErrors(logger: Logger, known: readonly string[] = []): Logger {
  if (known.length === 0) return logger.child({}, { serializers: ERROR_SERIALIZERS });
  const serializer = (value: unknown) =>
    typeof value === 'string' ? redactSecrets(value, known) : safeError(value, known);
  return logger.child({}, { serializers: { err: serializer, error: serializer } });
}

/** "Name: message" of an error (or its string form), credentials redacted. */
export function describeError(error: unknown): string {
  return redactSecrets(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
}
