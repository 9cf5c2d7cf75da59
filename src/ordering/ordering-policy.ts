import { compareInstants, type Instant } from '../envelope/timestamp.js';
import type { OrderingConfig } from './ordering-config.js';

/** One applied (or incoming) event of an entity key, as the ordering guard keeps it. */
export interface EntityVersion {
  /** `occurredAt` as the producer sent it (RFC 3339 with offset). */
  readonly occurredAt: string;
  /** The same instant at full precision: compared, never the text. */
  readonly instant: Instant;
  /** Breaks ties between equal instants (see {@link compareVersions}). */
  readonly messageId: string;
  /** The event deleted the entity. */
  readonly tombstone: boolean;
}

export type OrderingVerdict =
  /** Newer than the last applied event of the key (or the first): record it and run the handler. */
  | { readonly verdict: 'apply'; readonly futureByMs?: number }
  /** Not newer than the last applied event (older, or the same instant and a lower or equal id). */
  | { readonly verdict: 'stale'; readonly last: EntityVersion }
  /** Newer than a tombstone, and the policy does not resurrect deleted entities. */
  | { readonly verdict: 'tombstoned'; readonly last: EntityVersion }
  /** Stamped further in the future than the allowed clock skew, and the policy rejects it. */
  | { readonly verdict: 'future'; readonly futureByMs: number };

/**
 * The total order of the events of one key: by instant, then — for equal instants — by message id
 * (plain string comparison, code unit by code unit). Arrival order never enters it, so every
 * consumer, replay and redrive applies the same event last. Negative: `a` comes before `b`.
 */
export function compareVersions(
  a: Pick<EntityVersion, 'instant' | 'messageId'>,
  b: Pick<EntityVersion, 'instant' | 'messageId'>,
): number {
  const byInstant = compareInstants(a.instant, b.instant);
  if (byInstant !== 0) return byInstant;
  return a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0;
}

/**
 * The ordering guard's decision: pure, over plain data and the current time (epoch ms).
 * Future check first (a producer's broken clock must not block a key for hours), then staleness
 * against the last applied version, then the tombstone policy.
 */
export function decideOrdering(
  incoming: EntityVersion,
  last: EntityVersion | undefined,
  policy: Pick<OrderingConfig, 'futureSkewMs' | 'futurePolicy' | 'tombstones'>,
  nowMs: number,
): OrderingVerdict {
  let futureByMs: number | undefined;
  if (policy.futureSkewMs !== undefined) {
    const ahead = incoming.instant.epochMs - nowMs;
    if (ahead > policy.futureSkewMs) {
      if (policy.futurePolicy === 'reject') return { verdict: 'future', futureByMs: ahead };
      futureByMs = ahead;
    }
  }
  if (last !== undefined) {
    if (compareVersions(incoming, last) <= 0) return { verdict: 'stale', last };
    if (last.tombstone && !incoming.tombstone && policy.tombstones.resurrect === 'reject') {
      return { verdict: 'tombstoned', last };
    }
  }
  return futureByMs === undefined ? { verdict: 'apply' } : { verdict: 'apply', futureByMs };
}
