import { assertNever } from '../internal/assert-never.js';
import type { Delivery } from '../transport/delivery.js';
import { SluiceHeader } from '../transport/headers.js';

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
 * decide, the endpoint calls this once per delivery.
 */
export async function settle(delivery: Delivery, outcome: Outcome, forward: Forward): Promise<void> {
  switch (outcome.kind) {
    case 'completed':
      return delivery.complete();
    case 'skipped':
      // The copy is on the broker before the original goes: a crash in between duplicates, never loses.
      if (outcome.forwardTo !== undefined) {
        await forward(outcome.forwardTo, delivery, { [SluiceHeader.skipReason]: outcome.reason }, outcome.messageId);
      }
      return delivery.complete();
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
}
