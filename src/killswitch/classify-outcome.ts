import { BadInputReasons, type DeadLetterReason } from '../errors/fault.js';
import type { Outcome } from '../pipeline/outcome.js';
import type { OutcomeClass } from './kill-switch-policy.js';

/** Dead-letter reasons that mean the handler (or what it depends on) failed. */
const HANDLER_FAILURES: ReadonlySet<DeadLetterReason> = new Set([
  'permanent-failure',
  'retries-exhausted',
  'handler-dead-lettered',
]);

/**
 * How a final outcome counts for the kill switch:
 * - success: completed, skipped (duplicate, stale-skipped, forwarded): the pipeline and handler work;
 * - failure: dead-lettered by the handler's failure (permanent, retries exhausted, `ctx.deadLetter`),
 *   and a release for delayed redelivery after a handler error: a delivery that failed, even though
 *   the message has attempts left (MassTransit counts every fault; waiting until the last redelivery
 *   would hide an outage for as long as the retry policy spans);
 * - dependency: released because a dependency failed (the inbox store, a downstream the handler
 *   marks): counted on its own, never a dead letter;
 * - bad input (undecodable, schema violation, ...): a failure only with `countBadInput`;
 * - neutral: `ctx.retryLater()` (the handler chose to wait), `stale`, and other releases.
 */
export function classifyOutcome(outcome: Outcome, countBadInput: boolean): OutcomeClass {
  switch (outcome.kind) {
    case 'completed':
    case 'skipped':
      return 'success';
    case 'retry':
      return outcome.retryLater ? 'neutral' : 'failure';
    case 'deadLetter': {
      const { reason } = outcome.fault;
      if (HANDLER_FAILURES.has(reason)) return 'failure';
      if (BadInputReasons.has(reason)) return countBadInput ? 'failure' : 'neutral';
      return 'neutral';
    }
    case 'released':
      return outcome.reason === 'dependency' ? 'dependency' : 'neutral';
  }
}
