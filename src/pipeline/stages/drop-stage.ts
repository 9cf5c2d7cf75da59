import type { Logger } from 'pino';
import type { DecodedContext, Route } from '../context.js';
import type { Outcome } from '../outcome.js';
import type { Stage } from '../compose.js';
import { andThen } from '../maybe-promise.js';

/**
 * For message types marked droppable: a message that would be dead-lettered (schema violation,
 * permanent failure, retries exhausted) is completed instead and logged at warn level.
 */
export function dropStage(routes: ReadonlyMap<string, Route>): Stage<DecodedContext> {
  // Decided once, when the endpoint starts: without a droppable type the stage costs nothing.
  if (![...routes.values()].some((r) => r.droppable)) return (ctx, next) => next(ctx);
  return (ctx, next) =>
    andThen(next(ctx), (outcome): Outcome => {
      if (outcome.kind !== 'deadLetter' || routes.get(ctx.envelope.type)?.droppable !== true) return outcome;
      logDrop(ctx.log, outcome);
      return { kind: 'skipped', reason: 'dropped', detail: outcome.fault.description };
    });
}

function logDrop(log: Logger, outcome: Extract<Outcome, { kind: 'deadLetter' }>): void {
  log.warn(
    { reason: outcome.fault.reason, description: outcome.fault.description, attempts: outcome.fault.attempts },
    'dropped a droppable message instead of dead-lettering it',
  );
}
