import { createHash } from 'node:crypto';
import type { MessageContract, MessageInputOf } from '../contracts/define-message.js';
import { MessageRejected } from '../contracts/message-rejected.js';
import type { EnvelopeOptions } from '../envelope/envelope.js';
import { BadInputReasons } from '../errors/fault.js';
import type { DeliveryContext } from '../pipeline/context.js';
import type { Outcome, OutcomeObserver } from '../pipeline/outcome.js';
import { derivedId } from '../pipeline/stages/invoke-handler.js';
import { safeError } from '../telemetry/logger.js';

/** How the bus sends a command (`bus.send`). */
export type SendCommand = <C extends MessageContract>(
  address: string,
  contract: C,
  data: MessageInputOf<C>,
  options: EnvelopeOptions,
) => Promise<string>;

/**
 * An outcome observer of an endpoint with a `rejectionAddress`: for each message dead-lettered for
 * bad input, sends a `MessageRejected` notice there. Its id is derived from the rejected message, so
 * a redelivery repeats it (and the receiver's inbox deduplicates). A failed send is logged.
 */
export class RejectionNotices implements OutcomeObserver {
  constructor(
    private readonly address: string,
    private readonly endpoint: string,
    private readonly send: SendCommand,
  ) {}

  done(ctx: DeliveryContext, outcome: Outcome | undefined): void {
    if (outcome?.kind !== 'deadLetter' || !BadInputReasons.has(outcome.fault.reason)) return;
    const { fault } = outcome;
    const { endpoint } = this;
    const subject = fault.messageId ?? createHash('sha256').update(ctx.delivery.body).digest('hex');
    this.send(
      this.address,
      MessageRejected,
      {
        messageId: fault.messageId,
        messageType: fault.messageType,
        endpoint,
        reason: fault.reason,
        description: fault.description,
        rejectedAt: fault.lastFailureAt,
      },
      { id: derivedId(subject, endpoint, 0), causationId: fault.messageId },
    ).catch((error: unknown) => {
      ctx.log.warn({ err: safeError(error) }, 'could not send the rejection notice');
    });
  }
}
