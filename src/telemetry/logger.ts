import pino, { type Logger } from 'pino';
import { redactSecrets } from './redact.js';

export { redactSecrets } from './redact.js';

/** Field paths pino redacts in every log line. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'connectionString',
  '*.connectionString',
  'url',
  '*.url',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
];

/** The root logger when the application gives none: JSON to stdout, secrets redacted. */
export function createRootLogger(level: string, service: string): Logger {
  return pino({
    name: 'sluice',
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '***' },
    serializers: { err: pino.stdSerializers.err },
  });
}

/** "Name: message" of an error (or its string form), credentials redacted. */
export function describeError(error: unknown): string {
  return redactSecrets(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
}

/**
 * An error as a log field with credentials redacted from its message and stack: pino's redaction
 * matches field names only, and error texts (a failed connect, a driver message) often carry a URL.
 * The copy keeps the error's class, so pino's `err` serializer still reports its type and code.
 */
export function safeError(error: unknown): unknown {
  if (!(error instanceof Error)) return redactSecrets(String(error));
  const copy = Object.create(Object.getPrototypeOf(error) as object) as Error;
  Object.assign(copy, error);
  Object.defineProperty(copy, 'message', { value: redactSecrets(error.message), writable: true, configurable: true });
  if (error.stack) {
    Object.defineProperty(copy, 'stack', { value: redactSecrets(error.stack), writable: true, configurable: true });
  }
  return copy;
}
