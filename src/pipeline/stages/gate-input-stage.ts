import { BadInputReasons } from '../../errors/fault.js';
import { Admission } from '../admission.js';
import type { Stage } from '../compose.js';
import type { DeliveryContext } from '../context.js';
import type { Outcome } from '../outcome.js';
import { type Gate, RELEASED_BY_KILL_SWITCH } from './gate-stage.js';

const RELEASED = Promise.resolve(RELEASED_BY_KILL_SWITCH);

/**
 * The kill switch's outer check, first in the pipeline: a delivery that arrives while the switch
 * is tripped (prefetched before the consumer paused) goes back without being decoded; and bad
 * input, which is decided before the gate, is shown to the switch here: counted as a failure with
 * `countBadInput`, and released rather than dead-lettered while tripped.
 */
export function gateInputStage(gate: Gate): Stage<DeliveryContext> {
  // Not async, and one shared callback: this runs for every message.
  const onOutcome = (outcome: Outcome): Outcome =>
    outcome.kind === 'deadLetter' && BadInputReasons.has(outcome.fault.reason)
      ? gate.observe(Admission.unadmitted, outcome, undefined)
      : outcome;
  return (ctx, next) => (gate.releasesAll() ? RELEASED : next(ctx).then(onOutcome));
}
