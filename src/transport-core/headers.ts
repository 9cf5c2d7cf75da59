import type { FaultDetails } from '../errors/fault.js';
import { faultToHeaders } from '../errors/fault.js';

/** Transport headers Sluice itself reads and writes. Names are stable wire format. */
export const SluiceHeader = {
  /** Attempts already made by earlier deliveries of this message (survives delayed redelivery). */
  attempts: 'sluice-attempts',
  /** ISO time of the first failed attempt, carried with the attempt count. */
  firstFailureAt: 'sluice-first-failure-at',
  /** Signs the attempt count and first failure time: only Sluice may set them (`retry-state.ts`). */
  retrySignature: 'sluice-retry-signature',
  /** Dependency failures of this message so far (they spend no attempt): drives the release backoff. */
  dependencyFailures: 'sluice-dependency-failures',
  /** Set on a redriven copy. */
  redrivenAt: 'sluice-redriven-at',
  redriveReason: 'sluice-redrive-reason',
  /** Delivery count kept by a transport whose broker does not count. */
  deliveryCount: 'sluice-delivery-count',
  messageType: 'sluice-message-type',
  /** Why a message was forwarded to a skipped queue. */
  skipReason: 'sluice-skip-reason',
} as const;

/** Headers for a dead-letter copy: the original's, less stale retry state, plus the fault. */
export function deadLetterHeaders(
  original: Readonly<Record<string, string>>,
  fault: FaultDetails,
): Record<string, string> {
  return { ...original, ...faultToHeaders(fault) };
}

/** What a message's attempts so far left on it: gone from a redriven copy, which starts afresh. */
const ATTEMPT_STATE: readonly string[] = [
  SluiceHeader.attempts,
  SluiceHeader.firstFailureAt,
  SluiceHeader.retrySignature,
  SluiceHeader.dependencyFailures,
];
const RETRY_STATE: readonly string[] = [...ATTEMPT_STATE, SluiceHeader.deliveryCount];

/**
 * Headers for a new message made from a delivery (a forward to the skipped queue): without the
 * retry state and delivery count, which belong to the delivery, not to the new message.
 */
export function withoutRetryState(headers: Readonly<Record<string, string>>): Record<string, string> {
  return withoutHeaders(headers, RETRY_STATE);
}

/** A copy of `headers` without the `dropped` ones: exact names, or prefixes ending in `-`. */
export function withoutHeaders(
  headers: Readonly<Record<string, string>>,
  dropped: readonly string[],
): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const name in headers) {
    if (!dropped.some((d) => (d.endsWith('-') ? name.startsWith(d) : name === d))) {
      copy[name] = headers[name] as string;
    }
  }
  return copy;
}

/**
 * A broker's header table as string headers, whatever the client decoded: strings as they are,
 * numbers, booleans and bigints printed, bytes read as UTF-8, dates as ISO 8601; anything else
 * (null, nested tables, an AMQP `x-death` list) left out. With `firstOfList`, a repeated header (a
 * list: Kafka) is its first value.
 */
export function stringHeaders(
  raw: Readonly<Record<string, unknown>> | null | undefined,
  firstOfList = false,
): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!raw) return headers;
  // for-in, not Object.entries: no array per message (this runs for every delivery).
  for (const name in raw) {
    if (!Object.hasOwn(raw, name)) continue;
    let value = raw[name];
    if (firstOfList && Array.isArray(value)) value = value[0];
    if (typeof value === 'string') headers[name] = value;
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
      headers[name] = String(value);
    } else if (Buffer.isBuffer(value)) headers[name] = value.toString('utf8');
    else if (value instanceof Date) headers[name] = value.toISOString();
  }
  return headers;
}

/**
 * Headers for the copy a redrive sends back to the endpoint: the fault, the attempt state and the
 * kept delivery count removed (the copy is a first delivery), the transport's own bookkeeping headers
 * removed (`dropped`: exact names, or prefixes ending in `-`), and the redrive stamped.
 */
export function redriveHeaders(
  deadLettered: Readonly<Record<string, string>>,
  reason: string,
  now: Date,
  dropped: readonly string[] = [],
): Record<string, string> {
  const headers = withoutHeaders(deadLettered, ['sluice-fault-', ...RETRY_STATE, ...dropped]);
  headers[SluiceHeader.redrivenAt] = now.toISOString();
  headers[SluiceHeader.redriveReason] = reason;
  return headers;
}
