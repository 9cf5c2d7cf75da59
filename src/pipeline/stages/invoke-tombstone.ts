import type { TombstoneContext } from '../../contracts/tombstone-handler.js';
import { createFault } from '../../errors/fault.js';
import type { HandlerContext } from '../context.js';
import { COMPLETED, type Outcome } from '../outcome.js';

/**
 * Runs a tombstone through its route: the route's `onTombstone(key, ctx)` when it has one
 * (→ completed); otherwise `skipped` (`tombstoned`, logged at info) or a dead letter (`tombstoned`),
 * by the route's `ordering.tombstones.unhandled`. The normal handler never sees a tombstone.
 */
export async function invokeTombstone(
  ctx: HandlerContext,
  messageContext: TombstoneContext<unknown>,
): Promise<Outcome> {
  const { route, envelope } = ctx;
  if (route.onTombstone) {
    await route.onTombstone(envelope.key, messageContext);
    return COMPLETED;
  }
  const description = `tombstone for key "${envelope.key ?? '(none)'}" of type "${envelope.type}": no onTombstone handler on endpoint "${ctx.endpoint.name}"`;
  if (route.ordering?.tombstones.unhandled === 'deadLetter') {
    return {
      kind: 'deadLetter',
      fault: createFault({
        reason: 'tombstoned',
        description,
        attempts: ctx.attempt,
        endpoint: ctx.endpoint.name,
        originalAddress: ctx.delivery.address,
        now: new Date(ctx.endpoint.clock.now()),
        messageId: envelope.id,
        messageType: envelope.type,
      }),
    };
  }
  return { kind: 'skipped', reason: 'tombstoned', detail: description };
}
