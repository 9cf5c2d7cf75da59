import type { Logger } from 'pino';
import { rejectBadInput } from '../bad-input.js';
import type { DecodedContext, Route, ValidatedContext } from '../context.js';
import { withRoute } from '../narrow.js';
import type { Stage } from '../compose.js';

/** What happens to a message no handler on the endpoint takes. */
export type UnknownTypePolicy =
  | { readonly kind: 'deadLetter' }
  | { readonly kind: 'ignore' }
  | { readonly kind: 'skippedQueue'; readonly address: string };

/**
 * Envelope → typed message. An unknown type is dead-lettered or ignored (completed with a warning),
 * by policy; data that breaks the contract's schema is dead-lettered with the path and rule. A
 * tombstone of a known type passes without a message (its data is not checked).
 */
export function validateStage(
  routes: ReadonlyMap<string, Route>,
  unknownTypes: UnknownTypePolicy,
): Stage<DecodedContext, ValidatedContext> {
  return (ctx, next) => {
    const { envelope, endpoint } = ctx;
    const route = routes.get(envelope.type);
    if (!route) {
      if (unknownTypes.kind === 'ignore') {
        warn(ctx.log, envelope.type);
        return { kind: 'skipped', reason: 'unknown-type', detail: envelope.type };
      }
      if (unknownTypes.kind === 'skippedQueue') {
        return {
          kind: 'skipped',
          reason: 'unknown-type',
          detail: envelope.type,
          forwardTo: unknownTypes.address,
          messageId: envelope.id,
        };
      }
      return rejectBadInput(
        ctx,
        'unknown-message-type',
        `no handler for type "${envelope.type}" on endpoint "${endpoint.name}"`,
        envelope,
      );
    }
    // A tombstone (the entity was deleted) is not an instance of the contract: its data, usually
    // absent, is not validated, and only the route's tombstone handler sees it (message undefined).
    if (envelope.tombstone) return next(withRoute(ctx, route, undefined));
    const parsed = route.contract.schema.safeParse(envelope.data);
    if (!parsed.success) {
      const description = parsed.error.issues
        .map(
          (i) =>
            `data${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${i.message}`,
        )
        .join('; ');
      return rejectBadInput(ctx, 'schema-violation', `${envelope.type}: ${description}`, envelope);
    }
    return next(withRoute(ctx, route, parsed.data));
  };
}

function warn(log: Logger, type: string): void {
  log.warn({ messageType: type }, 'ignored a message of unknown type');
}
