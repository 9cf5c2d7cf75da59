import { createFault, type DeadLetterReason } from '../../errors/fault.js';
import { ConfigError } from '../../errors/sluice-error.js';
import { checkTimestamp } from '../../envelope/timestamp.js';
import type { InboxStore } from '../../inbox/inbox-store.js';
import type { Clock } from '../../internal/clock.js';
import type { OrderingConfig } from '../../ordering/ordering-config.js';
import { decideOrdering, type EntityVersion, type OrderingVerdict } from '../../ordering/ordering-policy.js';
import type { HandlerContext, Route } from '../context.js';
import type { OrderingFacts, Outcome } from '../outcome.js';
import type { Stage } from '../compose.js';

export interface OrderingStageOptions {
  readonly endpoint: string;
  readonly routes: ReadonlyMap<string, Route>;
  /** The endpoint's inbox store; `undefined` when the endpoint has none. */
  readonly store: InboxStore<unknown> | undefined;
  readonly clock: Clock;
}

/**
 * The ordering guard, inside the inbox transaction, between the inbox and the handler: reads the
 * last applied version of the message's key (locked), decides with `decideOrdering`, and either
 * records the new version and runs the handler, or refuses: `skipped` (`stale` / `tombstoned`,
 * recorded as the inbox row's outcome) or a dead letter (`stale` / `tombstoned` /
 * `future-timestamp`), by policy. The handler never runs for a refused event.
 *
 * Applies to routes whose `ordering.enabled` and whose message has a key (the route's
 * `orderingKey`, else the envelope key; a tombstone always uses the envelope key). Batch routes are
 * refused at registration. Throws `ConfigError` when built for an endpoint without an inbox whose
 * routes ask for ordering.
 */
export function orderingStage(options: OrderingStageOptions): Stage<HandlerContext> {
  const { endpoint, routes, store, clock } = options;
  const ordered = [...routes.values()].filter((r) => r.ordering?.enabled === true);
  if (ordered.length === 0) return (ctx, next) => next(ctx);
  if (!store) {
    throw new ConfigError([
      `endpoints.${endpoint}.ordering.enabled: the ordering guard needs the inbox (its versions are read and written in the ` +
        `inbox transaction): give createBus an inbox store and keep endpoints.${endpoint}.inbox on (ordered types: ${ordered
          .map((r) => r.contract.type)
          .join(', ')})`,
    ]);
  }
  return async (ctx, next) => {
    const { route, envelope } = ctx;
    const ordering = route.ordering;
    if (ordering?.enabled !== true || route.batch) return next(ctx);
    const key = envelope.tombstone || !route.orderingKey ? envelope.key : route.orderingKey(ctx.message, envelope);
    if (key === undefined) return next(ctx);
    const checked = checkTimestamp(envelope.occurredAt);
    // The decode stage enforced the timestamp rule already; this guards against a custom codec.
    if (!checked.ok) throw new Error(`occurredAt "${envelope.occurredAt}" breaks the timestamp rule (${checked.rule})`);
    const incoming: EntityVersion = {
      occurredAt: envelope.occurredAt,
      instant: checked.instant,
      messageId: envelope.id,
      tombstone: envelope.tombstone,
    };
    // Twice at most: a first write loses only to another transaction's first write of the same key,
    // and the second read then finds (and locks) that row.
    for (let round = 0; round < 2; round++) {
      const last = await store.readVersion(ctx.tx, endpoint, key);
      const verdict = decideOrdering(incoming, last, ordering, clock.now());
      if (verdict.verdict !== 'apply') return refuse(ctx, key, incoming, verdict, ordering);
      if (verdict.futureByMs !== undefined) {
        ctx.log.warn(
          { orderingKey: key, occurredAt: envelope.occurredAt, futureByMs: verdict.futureByMs },
          'accepted an event stamped in the future beyond the allowed clock skew',
        );
      }
      if (await store.writeVersion(ctx.tx, endpoint, key, incoming, last === undefined)) return next(ctx);
    }
    throw new Error(`ordering guard: the version of key "${key}" changed twice under the transaction`);
  };
}

function refuse(
  ctx: HandlerContext,
  key: string,
  incoming: EntityVersion,
  verdict: Exclude<OrderingVerdict, { verdict: 'apply' }>,
  ordering: OrderingConfig,
): Outcome {
  if (verdict.verdict === 'future') {
    return deadLetter(
      ctx,
      'future-timestamp',
      `occurredAt ${incoming.occurredAt} of key "${key}" is ${verdict.futureByMs} ms ahead of this consumer's clock ` +
        `(allowed: ${ordering.futureSkewMs} ms)`,
    );
  }
  const { last } = verdict;
  const facts: OrderingFacts = {
    orderingKey: key,
    occurredAt: incoming.occurredAt,
    lastAppliedAt: last.occurredAt,
    lastMessageId: last.messageId,
    lastTombstone: last.tombstone,
  };
  const description =
    verdict.verdict === 'stale'
      ? `stale: key "${key}" occurredAt ${incoming.occurredAt} (message ${incoming.messageId}) is not newer than the last applied ` +
        `${last.occurredAt} (message ${last.messageId}${last.tombstone ? ', a tombstone' : ''})`
      : `tombstoned: key "${key}" was deleted at ${last.occurredAt} (message ${last.messageId}); ` +
        `occurredAt ${incoming.occurredAt} would bring it back and tombstones.resurrect is "reject"`;
  if (ordering.stalePolicy === 'deadLetter') return deadLetter(ctx, verdict.verdict, description);
  return { kind: 'skipped', reason: verdict.verdict, detail: description, ordering: facts };
}

function deadLetter(ctx: HandlerContext, reason: DeadLetterReason, description: string): Outcome {
  return {
    kind: 'deadLetter',
    fault: createFault({
      reason,
      description,
      attempts: ctx.attempt,
      endpoint: ctx.endpoint.name,
      originalAddress: ctx.delivery.address,
      now: new Date(ctx.endpoint.clock.now()),
      messageId: ctx.envelope.id,
      messageType: ctx.envelope.type,
    }),
  };
}
