import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SluiceHeader } from '../transport-core/headers.js';

/** What earlier deliveries of a message spent, carried in its headers across delayed redeliveries. */
export interface RetryState {
  /** Attempts already made (0 on a first delivery, and whenever the headers cannot be trusted). */
  readonly attempts: number;
  /** When the first attempt failed; undefined on a first delivery. */
  readonly firstFailureAt: Date | undefined;
}

/**
 * Reads and writes the retry state headers (`sluice-attempts`, `sluice-first-failure-at`). Only
 * Sluice may set them: the state a retry writes is signed (`sluice-retry-signature`, HMAC-SHA256
 * over the endpoint, the message id and the state), and a state whose signature does not verify is
 * not believed. So a producer that sets `sluice-attempts: 99` on a new message, or copies the
 * headers of another message or endpoint, gets the full retry policy, while a legitimate retry copy
 * (a RabbitMQ delay-queue copy, a Kafka retry-topic record, a Service Bus scheduled copy, a memory
 * re-enqueue) keeps its count on every transport, since each carries the headers it was released
 * with. Pure apart from hashing; safe to share across deliveries.
 */
export interface RetryStateHeaders {
  /** The verified state of a delivery; `{ attempts: 0 }` when absent, malformed or not signed by us. */
  read(headers: Readonly<Record<string, string>>, messageId: string): RetryState;
  /** The headers of a release for redelivery: the state and its signature. */
  write(state: { readonly attempts: number; readonly firstFailureAt: Date }, messageId: string): Record<string, string>;
}

const FIRST_DELIVERY: RetryState = Object.freeze({ attempts: 0, firstFailureAt: undefined });
const VERSION = 'v1';
const ATTEMPTS = /^[1-9]\d{0,5}$/;

/**
 * Retry state headers for one endpoint. `key` is the bus's `retrySigningKey` (the same on every
 * instance of the service); without one, a key derived from the service name (`service`), which
 * stops producers that set or copy the headers but not one that knows the scheme and the name.
 */
export function retryStateHeaders(options: {
  readonly key: string | undefined;
  readonly service: string;
  readonly endpoint: string;
}): RetryStateHeaders {
  const key =
    options.key ?? createHash('sha256').update(`sluice-retry-state\u0000${options.service}`).digest('base64url');
  const sign = (messageId: string, attempts: string, firstFailureAt: string): string =>
    `${VERSION}.${createHmac('sha256', key)
      .update(`${VERSION}\u0000${options.endpoint}\u0000${messageId}\u0000${attempts}\u0000${firstFailureAt}`)
      .digest('base64url')}`;

  return {
    read(headers, messageId) {
      const attempts = headers[SluiceHeader.attempts];
      // The common case, a first delivery without retry headers, costs no hashing.
      if (attempts === undefined) return FIRST_DELIVERY;
      const first = headers[SluiceHeader.firstFailureAt] ?? '';
      const signature = headers[SluiceHeader.retrySignature];
      if (!ATTEMPTS.test(attempts) || signature === undefined) return FIRST_DELIVERY;
      const expected = Buffer.from(sign(messageId, attempts, first));
      const given = Buffer.from(signature);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return FIRST_DELIVERY;
      const firstFailureAt = new Date(first);
      return {
        attempts: Number(attempts),
        firstFailureAt: Number.isNaN(firstFailureAt.getTime()) ? undefined : firstFailureAt,
      };
    },
    write(state, messageId) {
      const attempts = String(state.attempts);
      const first = state.firstFailureAt.toISOString();
      return {
        [SluiceHeader.attempts]: attempts,
        [SluiceHeader.firstFailureAt]: first,
        [SluiceHeader.retrySignature]: sign(messageId, attempts, first),
      };
    },
  };
}
