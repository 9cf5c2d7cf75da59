import { createFault } from '../errors/fault.js';
import type { DeliveryContext } from '../pipeline/context.js';
import type { Outcome } from '../pipeline/outcome.js';
import { describeError } from '../telemetry/logger.js';

/** A skipped outcome that copies the message elsewhere (the skipped queue) before completing it. */
export type ForwardingOutcome = Extract<Outcome, { kind: 'skipped' }> & { readonly forwardTo: string };

/**
 * The outcome that replaces a forward to the skipped queue that cannot succeed (refused, or failed
 * on every try): the message is dead-lettered as what it is, an `unknown-message-type` no handler
 * takes, with a description that names the skipped queue and the error. Without this the message
 * went back to the broker and cycled forever, never skipped, never dead-lettered. Pure.
 */
export function unforwardable(
  ctx: DeliveryContext,
  outcome: ForwardingOutcome,
  error: unknown,
  tries: number,
): Outcome {
  return {
    kind: 'deadLetter',
    fault: createFault({
      reason: 'unknown-message-type',
      description:
        `no handler for type "${outcome.detail ?? '?'}" on endpoint "${ctx.endpoint.name}", and moving it to ` +
        `"${outcome.forwardTo}" failed (${tries} ${tries === 1 ? 'try' : 'tries'}): ${describeError(error)}`,
      error,
      attempts: 0,
      endpoint: ctx.endpoint.name,
      originalAddress: ctx.delivery.address,
      now: new Date(ctx.endpoint.clock.now()),
      messageId: outcome.messageId,
      messageType: outcome.detail,
    }),
  };
}
