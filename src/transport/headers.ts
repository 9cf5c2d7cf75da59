import type { FaultDetails } from '../errors/fault.js';
import { faultToHeaders } from '../errors/fault.js';

/** Transport headers Sluice itself reads and writes. Names are stable wire format. */
export const SluiceHeader = {
  /** Attempts already made by earlier deliveries of this message (survives delayed redelivery). */
  attempts: 'sluice-attempts',
  /** ISO time of the first failed attempt, carried with the attempt count. */
  firstFailureAt: 'sluice-first-failure-at',
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
