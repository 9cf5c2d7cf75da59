import type { Envelope } from '../../envelope/envelope.js';
import { BadInputReasons } from '../../errors/fault.js';
import { Admission } from '../admission.js';
import type { Stage } from '../compose.js';
import type { AdmittedContext, ValidatedContext } from '../context.js';
import { isPromise, type MaybePromise } from '../maybe-promise.js';
import { withAdmission } from '../narrow.js';
import type { Outcome } from '../outcome.js';

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
const RELEASED_ON_SHUTDOWN: Outcome = Object.freeze({ kind: 'released', reason: 'shutdown' });

/**
 * Marks bad input the gate has shown to the switch (decided after admission: `future-timestamp`),
 * so that the gate's outer check (`gate-input-stage.ts`) does not show it again. Allocates only for
 * such a dead letter.
 */
function shown(outcome: Outcome): Outcome {
  return outcome.kind === 'deadLetter' && outcome.admitted !== true && BadInputReasons.has(outcome.fault.reason)
    ? { ...outcome, admitted: true }
    : outcome;
}

/**
 * The kill switch's gate, placed right after the schedule stage so that a message that waited for
 * its turn is checked when the turn comes. Tripped → released untouched; probing → only the probe
 * messages run, the others wait for the verdict. The outcome of everything admitted passes back
 * through here: the switch counts what the endpoint will settle (after retries), and a failure that
 * arrives after a trip is released instead of dead-lettered.
 */
export function gateStage(gate: Gate): Stage<ValidatedContext, AdmittedContext> {
  const admitted = (
    ctx: ValidatedContext,
    next: (ctx: AdmittedContext) => MaybePromise<Outcome>,
    ticket: number,
  ): MaybePromise<Outcome> => {
    if (ticket < 0) return ticket === Admission.shutdown ? RELEASED_ON_SHUTDOWN : RELEASED_BY_KILL_SWITCH;
    // A bug in a later stage: the endpoint releases the message; it counts as neither success nor
    // failure, but its probe slot (if it had one) must be given back. (Inline closures, not named
    // ones: bundlers that keep names wrap every named closure, and this runs for every message.)
    let outcome: MaybePromise<Outcome>;
    try {
      outcome = next(withAdmission(ctx, gate.isProbe(ticket)));
    } catch (error) {
      gate.observe(ticket, RELEASED_ON_SHUTDOWN, ctx.envelope);
      return Promise.reject(error);
    }
    // Decided without waiting: observed now (a throw of `observe` is the endpoint's, as from the
    // callback below).
    if (!isPromise(outcome)) return shown(gate.observe(ticket, outcome, ctx.envelope));
    return outcome.then(
      (o) => shown(gate.observe(ticket, o, ctx.envelope)),
      (error: unknown) => {
        gate.observe(ticket, RELEASED_ON_SHUTDOWN, ctx.envelope);
        throw error;
      },
    );
  };
  // Not async: this runs for every message, and an async wrapper costs more than the gate itself.
  return (ctx, next) => {
    const ticket = gate.admit(ctx.stopping);
    return typeof ticket === 'number' ? admitted(ctx, next, ticket) : ticket.then((t) => admitted(ctx, next, t));
  };
}
