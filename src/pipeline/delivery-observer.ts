import type { OutcomeObserver } from './outcome.js';

/**
 * An {@link OutcomeObserver} given to the bus from outside the endpoint's own list:
 * `sluice/testing` records what happened through it; an endpoint that keeps history records its
 * dead letters through one (`src/history/history-runtime.ts`). Called last, once per delivery.
 */
export type DeliveryObserver = OutcomeObserver;
