import { z } from 'zod';
import { BadInputReasons, type DeadLetterReason } from '../errors/fault.js';
import { defineMessage } from './define-message.js';

const badInput = [...BadInputReasons] as [DeadLetterReason, ...DeadLetterReason[]];

/**
 * The notice an endpoint sends to its `rejectionAddress` when it dead-letters a message for bad
 * input. Producers subscribe to learn what they sent wrong; the dead letter itself keeps the body.
 */
export const MessageRejected = defineMessage(
  'sluice.message-rejected',
  z.object({
    /** The rejected message's id, when its envelope could be read. */
    messageId: z.string().optional(),
    messageType: z.string().optional(),
    /** The producer (`source`), when the envelope could be read. */
    source: z.string().optional(),
    endpoint: z.string(),
    reason: z.enum(badInput),
    description: z.string(),
    rejectedAt: z.string(),
  }),
);
