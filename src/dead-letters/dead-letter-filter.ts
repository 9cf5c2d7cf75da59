import { z } from 'zod';
import type { DeadLetteredMessage } from '../transport-core/dead-letter-queue.js';
import { failureGroupOf, reasonOf } from './failure-group.js';

const Text = z.string().trim().min(1).max(500);
const Instant = z.iso.datetime({ offset: true });

/**
 * Which dead letters an operator means: every field given must match (and). Times compare with
 * the fault's last failure. Used by the list, and by redrive and purge of a group or a filter.
 */
export const DeadLetterFilterSchema = z.strictObject({
  /** The dead-letter reason (`schema-violation`, `retries-exhausted`, a broker's own reason). */
  reason: Text.optional(),
  /** The error's class name (`TypeError`, `PaymentDeclined`). */
  errorType: Text.optional(),
  /** The message type from the fault (`orders.order-placed.v1`). */
  messageType: Text.optional(),
  /** A failure group's id (see `failureGroupOf`). */
  group: z
    .string()
    .regex(/^[0-9a-f]{12}$/, 'a group id: 12 hex digits')
    .optional(),
  /** Failed at or after this time (RFC 3339 with an offset). */
  from: Instant.optional(),
  /** Failed before this time. */
  to: Instant.optional(),
});
export type DeadLetterFilter = z.infer<typeof DeadLetterFilterSchema>;

/** True when the dead letter matches every field of the filter. Pure. */
export function matchesFilter(dead: DeadLetteredMessage, filter: DeadLetterFilter): boolean {
  if (filter.reason !== undefined && reasonOf(dead) !== filter.reason) return false;
  if (filter.errorType !== undefined && dead.fault?.errorName !== filter.errorType) return false;
  if (filter.messageType !== undefined && dead.fault?.messageType !== filter.messageType) return false;
  if (filter.from !== undefined || filter.to !== undefined) {
    const at = Date.parse(dead.fault?.lastFailureAt ?? '');
    if (Number.isNaN(at)) return false;
    if (filter.from !== undefined && at < Date.parse(filter.from)) return false;
    if (filter.to !== undefined && at >= Date.parse(filter.to)) return false;
  }
  if (filter.group !== undefined && failureGroupOf(dead).id !== filter.group) return false;
  return true;
}
