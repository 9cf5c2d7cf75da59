import type { FaultDetails } from '../errors/fault.js';
import type { DeliveryContext } from './context.js';

export type SkipReason = 'duplicate' | 'stale' | 'tombstoned' | 'unknown-type' | 'dropped';

/**
 * The decision for one delivery. Stages return it; only the endpoint applies it to the delivery,
 * once (see `settle.ts`).
 */
export type Outcome =
  | { readonly kind: 'completed' }
  | {
      readonly kind: 'skipped';
      readonly reason: SkipReason;
      readonly detail?: string;
      /** Copy the message here before completing it (MassTransit's `_skipped` queue). */
      readonly forwardTo?: string;
      /** The message id the forwarded copy keeps (so broker and inbox deduplication still see it). */
      readonly messageId?: string;
      /** For `stale` / `tombstoned` skips by the ordering guard: what it compared (logged). */
      readonly ordering?: OrderingFacts;
    }
  | {
      readonly kind: 'retry';
      readonly delayMs: number;
      /** Headers carried to the next delivery (attempt count, first failure time). */
      readonly headers: Readonly<Record<string, string>>;
      readonly attempt: number;
      readonly error: unknown;
      /**
       * The handler asked for it (`ctx.retryLater()`): a decision, not a failure. Observers read
       * this rather than the retry stage's control signals.
       */
      readonly retryLater: boolean;
    }
  | {
      readonly kind: 'deadLetter';
      readonly fault: FaultDetails;
      /**
       * Decided after the kill switch's gate admitted the message (bad input the ordering guard
       * decides: `future-timestamp`), and shown to the switch there: the outer mapper, which shows
       * the switch bad input decided before admission, leaves it alone. Set by the gate's mapper.
       */
      readonly admitted?: true;
    }
  | {
      readonly kind: 'released';
      readonly reason: 'kill-switch' | 'shutdown' | 'busy';
      /** Comes back no sooner than this (a message another consumer holds). */
      readonly delayMs?: number;
    }
  | {
      /**
       * A dependency failed (the inbox store, or a downstream the handler marks as one): back to the
       * broker with a backoff delay, no attempt spent, never dead-lettered.
       */
      readonly kind: 'released';
      readonly reason: 'dependency';
      readonly delayMs: number;
      /** The message's dependency-failure count for its next delivery (the attempt count is left alone). */
      readonly headers: Readonly<Record<string, string>>;
      /** What failed (`inbox (postgres)`, a handler's own dependency). */
      readonly dependency: string;
      readonly error: unknown;
    };

/** What the ordering guard compared when it refused an event. */
export interface OrderingFacts {
  readonly orderingKey: string;
  /** The refused event's `occurredAt`, as sent. */
  readonly occurredAt: string;
  /** The last applied event's `occurredAt` for the key, as sent, and its message id. */
  readonly lastAppliedAt: string;
  readonly lastMessageId: string;
  readonly lastTombstone: boolean;
}

export const COMPLETED: Outcome = Object.freeze({ kind: 'completed' });
/** Handed back untouched: the endpoint is stopping (waiting, or arrived too late, when it began). */
export const RELEASED_ON_SHUTDOWN: Outcome = Object.freeze({ kind: 'released', reason: 'shutdown' });

/**
 * Sees every delivery leave its endpoint (MassTransit's receive observers): the endpoint calls each
 * observer of its list once per delivery, after settling, with the outcome it was settled with, or
 * `undefined` when it could not be settled (the broker refused: the lock was lost; or settling kept
 * failing and the message was given back), in which case the broker delivers it again. Counters and
 * logs, telemetry, the kill switch's count of bad input, rejection notices, the history of dead
 * letters and `sluice/testing` are observers. Called synchronously, after the endpoint's in-flight
 * count dropped; it must not throw, and runs for every message: keep it cheap.
 */
export interface OutcomeObserver {
  done(ctx: DeliveryContext, outcome: Outcome | undefined): void;
  /** A settlement try failed (called for each try; `done` follows once the delivery leaves). */
  settleFailed?(ctx: DeliveryContext, outcome: Outcome, error: unknown): void;
}
