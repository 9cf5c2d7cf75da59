import { BadInputReasons } from '../../errors/fault.js';
import { Admission } from '../admission.js';
import type { Stage } from '../compose.js';
import type { DeliveryContext } from '../context.js';
import type { OutcomeMapper } from '../delivery-pipeline.js';
import type { Outcome } from '../outcome.js';
import { type Gate, RELEASED_BY_KILL_SWITCH } from './gate-stage.js';

/**
 * The kill switch's outer check, first in the pipeline: a delivery that arrives while the switch
 * is tripped (prefetched before the consumer paused) goes back without being decoded.
 */
export function gateInputStage(gate: Gate): Stage<DeliveryContext> {
  return (ctx, next) => (gate.releasesAll() ? RELEASED_BY_KILL_SWITCH : next(ctx));
}

/**
 * Bad input decided before the gate (decode, validate) is shown to the switch here, last before
 * settlement: counted as a failure with `countBadInput`, and released rather than dead-lettered
 * while tripped (it changes the outcome before settlement, so it is a mapper, not an outcome
 * observer). Bad input decided after the gate (the ordering guard's `future-timestamp`) was counted
 * there and comes back marked `admitted`: each delivery is shown to the switch once.
 */
export function badInputToGate(gate: Gate): OutcomeMapper {
  return (_ctx, outcome: Outcome) =>
    outcome.kind === 'deadLetter' && outcome.admitted !== true && BadInputReasons.has(outcome.fault.reason)
      ? gate.observe(Admission.unadmitted, outcome, undefined)
      : outcome;
}
