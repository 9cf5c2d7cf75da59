// What the kill switch's policy speaks in: its states, the answers of `admit`, the classes and facts
// of the outcomes it is told, the transitions and observations it answers with, and its snapshot.
// The state machine itself is `KillSwitchPolicy` (kill-switch-policy.ts).

/**
 * `closed`: messages flow and final outcomes are counted. `tripped`: nothing is admitted (the
 * consumer is paused). `probing`: a few messages are admitted to test whether the cause is gone.
 */
export type KillSwitchState = 'closed' | 'tripped' | 'probing';

/**
 * How a final outcome counts: `failure` is the handler's (or bad input with `countBadInput`);
 * `dependency` a dependency's (the inbox store, a downstream the handler marks), counted on its own;
 * `neutral` outcomes (stale, retry-later, ignored bad input, releases) count for nothing.
 */
export type OutcomeClass = 'success' | 'failure' | 'dependency' | 'neutral';

// The answers of `admit` besides a ticket: the gate's protocol, declared where the gate stages read it.
export { Admission } from '../pipeline/admission.js';

export interface TripInfo {
  /** Tripped by an operator: it never restarts on its own. */
  readonly manual: boolean;
  readonly reason: string;
  readonly at: number;
  /** When probing starts (automatic trips only). */
  readonly restartAt?: number;
}

export type TransitionCause = 'rule' | 'probe-failed' | 'manual' | 'restart' | 'probe-succeeded' | 'reset';

/** A state change, returned by the method that caused it. */
export interface Transition {
  readonly from: KillSwitchState;
  readonly to: KillSwitchState;
  readonly cause: TransitionCause;
  readonly reason: string;
  readonly at: number;
  /** An operator caused it (a manual trip or a reset), not a rule or the restart timer. */
  readonly manual: boolean;
  readonly consecutiveTrips: number;
  readonly restartAt?: number;
}

/** What the caller should do with an observed outcome, and the state change it caused, if any. */
export interface Observation {
  /**
   * A failure the switch turns away: it arrived after a trip (from a message admitted before), or
   * it tripped the switch while the endpoint was recovering from an outage. It is released back to
   * the broker untouched rather than dead-lettered or retried: the outage costs it nothing.
   */
  readonly afterTrip: boolean;
  /**
   * With `afterTrip`: the delay of the release. A failure that tripped the switch (a failed probe,
   * a failure while recovering) goes back after 1 ms, behind the messages waiting, so that the next
   * probe tests another message (a poison message at the head of the queue cannot fail every probe).
   * A suspect set aside while the endpoint recovers goes back after the current restart delay.
   * Absent: at once.
   */
  readonly delayMs?: number;
  readonly transition?: Transition;
}

/** What the switch is told about an outcome besides its class. */
export interface OutcomeFacts {
  /** What failed: a dependency failure's dependency (in the trip reason). */
  readonly detail?: string;
  /**
   * When the message first failed (epoch ms; its first attempt, in this delivery or an earlier
   * one). A failure of a message that was already failing while others succeeded says something
   * about the message, not about the endpoint.
   */
  readonly firstFailureAt?: number;
  /**
   * The message's id: a message whose failure tripped the switch during an outage is remembered
   * (its release does not record the failure on the message), so that its next failure, after
   * others succeeded, is known for its own.
   */
  readonly messageId?: string;
}

export interface KillSwitchSnapshot {
  readonly state: KillSwitchState;
  readonly trip?: TripInfo;
  readonly consecutiveTrips: number;
  readonly consecutiveFailures: number;
  readonly consecutiveDependencyFailures: number;
  /**
   * Closed after an automatic trip, and not yet trusted: successes still needed before the outage
   * counts as over. Until then one failure trips the switch again (and is released).
   */
  readonly recovering?: { readonly successesNeeded: number };
  readonly window?: { readonly messages: number; readonly failures: number };
  readonly probes?: { readonly inFlight: number; readonly succeeded: number; readonly needed: number };
}
