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

const RETRY_STATE: ReadonlySet<string> = new Set([
  SluiceHeader.attempts,
  SluiceHeader.firstFailureAt,
  SluiceHeader.retrySignature,
  SluiceHeader.dependencyFailures,
  SluiceHeader.deliveryCount,
]);

/**
 * Headers for a new message made from a delivery (a forward to the skipped queue): without the
 * retry state and delivery count, which belong to the delivery, not to the new message.
 */
export function withoutRetryState(headers: Readonly<Record<string, string>>): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (!RETRY_STATE.has(name)) copy[name] = value;
  return copy;
}

/** Headers for a redriven copy: fault and attempt state removed, redrive stamped. */
export function redriveHeaders(
  deadLettered: Readonly<Record<string, string>>,
  reason: string,
  now: Date,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(deadLettered)) {
    if (
      name.startsWith('sluice-fault-') ||
      name === SluiceHeader.attempts ||
      name === SluiceHeader.firstFailureAt ||
      name === SluiceHeader.retrySignature ||
      name === SluiceHeader.dependencyFailures
    ) {
      continue;
    }
    headers[name] = value;
  }
  headers[SluiceHeader.redrivenAt] = now.toISOString();
  headers[SluiceHeader.redriveReason] = reason;
  return headers;
}
