import type { Logger } from 'pino';
import type { DecodedContext, Route } from '../context.js';
import type { OutcomeMapper } from '../delivery-pipeline.js';
import type { Outcome } from '../outcome.js';

/**
 * For message types marked droppable: a message that would be dead-lettered (schema violation,
 * permanent failure, retries exhausted) is completed instead and logged at warn level. Applies to
 * decoded deliveries only (the type names the route). `undefined` when no type is droppable: the
 * endpoint then has nothing to map.
 */
export function dropOutcome(routes: ReadonlyMap<string, Route>): OutcomeMapper | undefined {
  if (![...routes.values()].some((r) => r.droppable)) return undefined;
  return (ctx, outcome): Outcome => {
    if (outcome.kind !== 'deadLetter') return outcome;
    const { envelope } = ctx as Partial<DecodedContext>;
    if (envelope === undefined || routes.get(envelope.type)?.droppable !== true) return outcome;
    logDrop(ctx.log, outcome);
    return { kind: 'skipped', reason: 'dropped', detail: outcome.fault.description };
  };
}

function logDrop(log: Logger, outcome: Extract<Outcome, { kind: 'deadLetter' }>): void {
  log.warn(
    { reason: outcome.fault.reason, description: outcome.fault.description, attempts: outcome.fault.attempts },
    'dropped a droppable message instead of dead-lettering it',
  );
}
