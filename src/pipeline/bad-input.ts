import type { Envelope } from '../envelope/envelope.js';
import { createFault, type DeadLetterReason } from '../errors/fault.js';
import type { DeliveryContext } from './context.js';
import type { Outcome } from './outcome.js';

/**
 * The outcome for bad input decided before any handler ran: dead-lettered at once with zero
 * attempts, naming the message when its envelope could be read.
 */
export function rejectBadInput(
  ctx: DeliveryContext,
  reason: DeadLetterReason,
  description: string,
  envelope?: Envelope,
): Outcome {
  return {
    kind: 'deadLetter',
    fault: createFault({
      reason,
      description,
      attempts: 0,
      endpoint: ctx.endpoint.name,
      originalAddress: ctx.delivery.address,
      now: new Date(ctx.endpoint.clock.now()),
      messageId: envelope?.id,
      messageType: envelope?.type,
    }),
  };
}
