/**
 * Answers of the kill switch's gate (`Gate.admit` in `stages/gate-stage.ts`, `KillSwitchPolicy.admit`)
 * besides a ticket (a ticket is ≥ 0). `unadmitted` is the ticket of an outcome decided before
 * admission (bad input, from decode or validate). Declared here, with the gate's port, so that the
 * gate stages do not import the kill switch (ranked above the pipeline).
 */
export const Admission = {
  release: -1,
  wait: -2,
  unadmitted: -3,
  shutdown: -4,
} as const;
