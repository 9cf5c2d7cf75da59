import { SluiceError, TransportError } from '../errors/sluice-error.js';

/**
 * An error's message (`withName`: "name: message"), for logs and wrapped errors (callers redact it
 * where it may hold secrets).
 */
export function errorText(error: unknown, withName = false): string {
  if (!(error instanceof Error)) return String(error);
  return withName ? `${error.name}: ${error.message}` : error.message;
}

/**
 * A broker operation's failure as Sluice reports it: a Sluice error as it is, anything else a
 * (retryable) `TransportError` "`what` failed: message" with the original as its cause.
 */
export function transportFailure(what: string, error: unknown): SluiceError {
  if (error instanceof SluiceError) return error;
  return new TransportError(`${what} failed: ${errorText(error)}`, { cause: error });
}
