import type { DeliveryContext } from './context.js';
import type { Outcome } from './outcome.js';

/**
 * Sees every delivery of a bus leave its endpoint: with the final outcome it was settled with, or
 * `undefined` when it could not be settled (the broker refused: the lock was lost; or settling kept
 * failing and the message was given back), in which case the broker delivers it again. Called
 * synchronously by the endpoint, once per delivery, after its in-flight count dropped; it must not
 * throw. `sluice/testing` records what happened through it; an endpoint that keeps history records
 * its dead letters through one (`src/history/history-runtime.ts`).
 */
export interface DeliveryObserver {
  done(ctx: DeliveryContext, outcome: Outcome | undefined): void;
}
