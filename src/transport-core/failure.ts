import { SluiceError, TransportError } from '../errors/sluice-error.js';

/**
 * An error's message (`withName`: "name: message"), for logs and wrapped errors (callers redact it
 * where it may hold secrets). Never empty for an error whose message is: an `AggregateError` (the
 * Service Bus SDK's of its attempts, Node's of a connect to a name with several addresses: message
 * "") gives its errors' messages, any other its code or name.
 */
export function errorText(error: unknown, withName = false): string {
  if (!(error instanceof Error)) return String(error);
  let message = error.message;
  if (message === '' && error instanceof AggregateError && Array.isArray(error.errors)) {
    message = error.errors.map((inner: unknown) => errorText(inner)).join('; ');
  }
  if (message === '') {
    const code = (error as { code?: unknown }).code;
    message = typeof code === 'string' && code !== '' ? code : error.name;
  }
  return withName ? `${error.name}: ${message}` : message;
}

/**
 * A broker operation's failure as Sluice reports it: a Sluice error as it is, anything else a
 * (retryable) `TransportError` "`what` failed: message" with the original as its cause.
 */
export function transportFailure(what: string, error: unknown): SluiceError {
  if (error instanceof SluiceError) return error;
  return new TransportError(`${what} failed: ${errorText(error)}`, { cause: error });
}
