import type { Envelope } from '../../envelope/envelope.js';
import { BadInputReasons } from '../../errors/fault.js';
import { Admission } from '../admission.js';
import type { Stage } from '../compose.js';
import type { AdmittedContext, DeliveryContext, ValidatedContext } from '../context.js';
import type { OutcomeMapper } from '../delivery-pipeline.js';
import type { MaybePromise } from '../maybe-promise.js';
import { withAdmission } from '../narrow.js';
import { type Outcome, RELEASED_ON_SHUTDOWN } from '../outcome.js';

/** The kill switch as the pipeline sees it (implemented by `KillSwitch`). */
export interface Gate {
  /**
   * Tripped: the delivery must go back untouched. Makes sure the consumer is paused. Cheap; called
   * before decoding.
   */
  releasesAll(): boolean;
  /**
   * A ticket (≥ 0), `Admission.release` or `Admission.shutdown`; a promise of one when the
   * delivery must wait for a probe slot (it waits until `signal` aborts at the latest).
   */
  admit(signal: AbortSignal): number | Promise<number>;
  /** Whether `ticket`, just returned by `admit`, admitted a probe (it then gets one attempt). */
  isProbe(ticket: number): boolean;
  /**
   * Records a final outcome and returns the one to settle: the same, or `released` when the switch
   * turns a failure away (after a trip, or while recovering from one).
   */
  observe(ticket: number, outcome: Outcome, envelope: Envelope | undefined): Outcome;
}

export const RELEASED_BY_KILL_SWITCH: Outcome = Object.freeze({ kind: 'released', reason: 'kill-switch' });

/**
 * Marks bad input the gate has shown to the switch (decided after admission: `future-timestamp`),
 * so that the outer mapper (`badInputToGate`) does not show it again. Allocates only for such a
 * dead letter.
 */
function shown(outcome: Outcome): Outcome {
  return outcome.kind === 'deadLetter' && outcome.admitted !== true && BadInputReasons.has(outcome.fault.reason)
    ? { ...outcome, admitted: true }
    : outcome;
}

/** The ticket of a run the gate admitted, or a negative number. */
function ticketOf(ctx: DeliveryContext): number {
  return (ctx as Partial<AdmittedContext>).ticket ?? Admission.unadmitted;
}

/**
 * The kill switch's gate, first in the turn (after the span): a message that waited for its turn is
 * checked when the turn comes. Tripped → released untouched; probing → only the probe messages run,
 * the others wait for the verdict. An admitted message carries its ticket: {@link gateOutcome}
 * shows the switch its final outcome.
 */
export function gateStage(gate: Gate): Stage<ValidatedContext, AdmittedContext> {
  const admitted = (
    ctx: ValidatedContext,
    next: (ctx: AdmittedContext) => MaybePromise<Outcome>,
    ticket: number,
  ): MaybePromise<Outcome> => {
    if (ticket < 0) return ticket === Admission.shutdown ? RELEASED_ON_SHUTDOWN : RELEASED_BY_KILL_SWITCH;
    return next(withAdmission(ctx, gate.isProbe(ticket), ticket));
  };
  // Not async: this runs for every message, and an async wrapper costs more than the gate itself.
  return (ctx, next) => {
    const ticket = gate.admit(ctx.stopping);
    return typeof ticket === 'number' ? admitted(ctx, next, ticket) : ticket.then((t) => admitted(ctx, next, t));
  };
}

/**
 * The outcome of everything the gate admitted, shown to the switch when the pipeline reports it
 * (first of the mappers: after retries, before drop): the switch counts what the endpoint will
 * settle, and a failure that arrives after a trip is released instead of dead-lettered. A mapper
 * rather than a look at the turn's promise: one promise callback fewer per message whose handler
 * returns a promise.
 */
export function gateOutcome(gate: Gate): OutcomeMapper {
  return (ctx, outcome) => {
    const ticket = ticketOf(ctx);
    return ticket < 0 ? outcome : shown(gate.observe(ticket, outcome, (ctx as AdmittedContext).envelope));
  };
}

/**
 * A turn the gate admitted failed with a bug in a later stage (a throw or a rejection, not an
 * outcome): the endpoint releases the message; it counts as neither success nor failure, but its
 * probe slot (if it had one) must be given back.
 */
export function gateAbandoned(gate: Gate): (ctx: DeliveryContext) => void {
  return (ctx) => {
    const ticket = ticketOf(ctx);
    if (ticket >= 0) gate.observe(ticket, RELEASED_ON_SHUTDOWN, (ctx as AdmittedContext).envelope);
  };
}
