import { assertNever } from '../internal/assert-never.js';
import type { Delivery } from '../transport-core/delivery.js';
import { SluiceHeader } from '../transport-core/headers.js';

/** Sends a copy of a delivery (body untouched, headers merged) to another address. */
export type Forward = (
  address: string,
  delivery: Delivery,
  headers: Readonly<Record<string, string>>,
  messageId: string | undefined,
) => Promise<void>;
import type { Outcome } from './outcome.js';

/**
 * Applies an outcome to its delivery. The only place in Sluice that settles: handlers and stages
 * decide, the endpoint calls this once per delivery. Never throws: a failure is a rejection.
 */
export function settle(delivery: Delivery, outcome: Outcome, forward: Forward): Promise<void> {
  // Not async: this runs for every message, and the delivery's own promise is all it needs.
  try {
    switch (outcome.kind) {
      case 'completed':
        return delivery.complete();
      case 'skipped': {
        // The copy is on the broker before the original goes: a crash in between duplicates, never loses.
        if (outcome.forwardTo === undefined) return delivery.complete();
        const copied = forward(
          outcome.forwardTo,
          delivery,
          { [SluiceHeader.skipReason]: outcome.reason },
          outcome.messageId,
        );
        return copied.then(() => delivery.complete());
      }
      case 'retry':
        return delivery.release({ delayMs: outcome.delayMs, headers: outcome.headers });
      case 'deadLetter':
        return delivery.deadLetter(outcome.fault);
      case 'released':
        return outcome.reason === 'dependency'
          ? delivery.release({ delayMs: outcome.delayMs, headers: outcome.headers })
          : delivery.release({ delayMs: outcome.delayMs ?? 0 });
      default:
        return assertNever(outcome);
    }
  } catch (error) {
    return Promise.reject(error);
  }
}
