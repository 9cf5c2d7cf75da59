import type { Clock } from '../internal/clock.js';
import { Outage } from './outage.js';
import type { KillSwitchConfig } from './kill-switch-config.js';
import {
  Admission,
  type KillSwitchSnapshot,
  type KillSwitchState,
  type Observation,
  type OutcomeClass,
  type OutcomeFacts,
  type TripInfo,
  type Transition,
  type TransitionCause,
} from './kill-switch-state.js';
import { TripRules } from './trip-rules.js';

export * from './kill-switch-state.js';

/** A tripping failure goes back behind the messages waiting. */
const BEHIND_MS = 1;
const SETTLE: Observation = Object.freeze({ afterTrip: false });
const NO_FACTS: OutcomeFacts = Object.freeze({});
const AFTER_TRIP: Observation = Object.freeze({ afterTrip: true });

/**
 * The kill switch as a state machine over plain data: no timers, no I/O; time comes from the
 * injected clock's `now()`. The runtime (`KillSwitch`) schedules the restart (calling {@link tick})
 * and pauses the consumer; this class only decides.
 *
 * - closed → tripped when one of the {@link TripRules} fires on a counted failure. A message that
 *   first failed before the last success failed for its own sake: it does not lengthen the run.
 * - tripped → probing after the restart delay: `initial × factor^(trips in a row − 1)`, capped.
 * - probing admits `probeMessages` (each gets one attempt); when all succeeded → closed; the first
 *   failure → tripped, and the failed probe is released behind the waiting messages (no attempt
 *   spent, never dead-lettered).
 * - `trip(reason)` from any state → tripped for good (manual); `reset()` → closed, counts cleared.
 *
 * The budget of dead letters is per {@link Outage}, not per trip.
 * A poison message while recovering costs one trip, not a flap: the message whose failure tripped
 * the switch (while recovering, or as a probe) becomes a *suspect*. When a suspect fails again
 * while the endpoint recovers (or as a probe) and other messages succeeded since it tripped the
 * switch, the failure is the message's own: it neither trips the switch nor counts (a probe gives no
 * verdict, and its slot goes to another message), and the message is set aside
 * (released untouched, after the current restart delay) until the endpoint has recovered; then its
 * own retry policy decides, as on a healthy endpoint. A fresh failure still trips at once, so an
 * outage that goes on after a probe costs nothing more.
 *
 * Each state entry starts a new generation; the ticket `admit` returns is the generation. An
 * outcome of a message admitted before the last state change is still counted when the switch is
 * closed (a reset while failures are in flight lets none through uncounted), and turned away
 * (released) while it is tripped or probing.
 */
export class KillSwitchPolicy {
  #state: KillSwitchState = 'closed';
  #generation = 0;
  #trip: TripInfo | undefined;
  #consecutiveTrips = 0;
  #probesInFlight = 0;
  #probesSucceeded = 0;
  /** The current outage, if any: recovering, its first reason, its suspects. */
  readonly #outage = new Outage();
  /** When a counted outcome last succeeded (epoch ms). */
  #lastSuccessAt: number | undefined;
  /** Counted successes (probes included) since start: orders suspects and successes without a clock. */
  #successes = 0;
  /** The counts of a closed switch and the rules that trip it. */
  readonly #rules: TripRules;

  constructor(
    private readonly config: KillSwitchConfig,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    this.#rules = new TripRules(config);
  }

  get state(): KillSwitchState {
    return this.#state;
  }

  /**
   * Asks to let one message through. Returns a ticket (≥ 0) to pass back to {@link record}, or
   * `Admission.release` (tripped) or `Admission.wait` (probing, every probe slot taken).
   */
  admit(): number {
    if (this.#state === 'closed') return this.#generation;
    if (this.#state === 'tripped') return Admission.release;
    if (this.#probesInFlight + this.#probesSucceeded >= this.config.probeMessages) return Admission.wait;
    this.#probesInFlight++;
    return this.#generation;
  }

  /** Whether `ticket` (just returned by {@link admit}) admitted a probe. */
  isProbe(ticket: number): boolean {
    return this.#state === 'probing' && ticket === this.#generation;
  }

  /**
   * Records the final outcome of a message admitted with `ticket` (or `Admission.unadmitted`). The
   * outcome that trips a healthy switch is itself settled as decided (`afterTrip: false`).
   */
  record(ticket: number, result: OutcomeClass, facts: OutcomeFacts = NO_FACTS): Observation {
    switch (this.#state) {
      case 'closed':
        // Admitted in an earlier state (before a trip and reset) or not admitted at all (bad
        // input): counted all the same, so that nothing in flight at a reset goes by uncounted.
        return this.#count(result, facts);
      case 'probing':
        if (ticket === this.#generation) return this.#probe(result, facts);
        // Probing resumed the consumer: releasing bad input would only bring it straight back.
        if (ticket === Admission.unadmitted) return SETTLE;
        return result === 'failure' || result === 'dependency' ? AFTER_TRIP : SETTLE;
      case 'tripped':
        return AFTER_TRIP;
    }
  }

  /** Starts probing when an automatic trip's restart time has come; otherwise nothing. */
  tick(): Transition | undefined {
    const due = this.restartDueIn();
    if (due === undefined || due > 0) return undefined;
    const from = this.#state;
    this.#enter('probing');
    return this.#transition(from, 'restart', 'restart delay passed; probing', false, this.clock.now());
  }

  /** Milliseconds until an automatic trip starts probing (≤ 0: due); undefined when none is pending. */
  restartDueIn(): number | undefined {
    const restartAt = this.#state === 'tripped' ? this.#trip?.restartAt : undefined;
    return restartAt === undefined ? undefined : restartAt - this.clock.now();
  }

  /** Trips by hand: stays tripped until {@link reset}. Idempotent while manually tripped. */
  trip(reason: string): Transition | undefined {
    if (this.#state === 'tripped' && this.#trip?.manual) return undefined;
    return this.#enterTripped('manual', reason, true);
  }

  /**
   * Closes from any state and clears the counts and the restart backoff. Idempotent when closed.
   * After an automatic trip the endpoint is still recovering: the first failure trips it again.
   */
  reset(reason = 'reset'): Transition | undefined {
    if (this.#state === 'closed') return undefined;
    return this.#enterClosed('reset', reason);
  }

  /** The wait before probing after the `trips`-th automatic trip in a row. */
  restartDelay(trips: number): number {
    const { initial, factor, max } = this.config.restartDelayMs;
    return Math.min(max, initial * factor ** Math.max(0, trips - 1));
  }

  snapshot(): KillSwitchSnapshot {
    const rate = this.config.failureRate;
    return {
      state: this.#state,
      ...(this.#trip ? { trip: this.#trip } : {}),
      consecutiveTrips: this.#consecutiveTrips,
      consecutiveFailures: this.#rules.consecutiveFailures,
      consecutiveDependencyFailures: this.#rules.consecutiveDependency,
      ...(this.#state === 'closed' && this.#outage.active
        ? { recovering: { successesNeeded: this.#outage.recovering } }
        : {}),
      ...(this.#rules.window && rate ? { window: this.#rules.window.counts(this.clock.now()) } : {}),
      ...(this.#state === 'probing'
        ? {
            probes: {
              inFlight: this.#probesInFlight,
              succeeded: this.#probesSucceeded,
              needed: this.config.probeMessages,
            },
          }
        : {}),
    };
  }

  #count(result: OutcomeClass, facts: OutcomeFacts): Observation {
    if (result === 'neutral') return SETTLE;
    const { detail } = facts;
    if (result === 'dependency') {
      const reason = this.#rules.dependencyFailed(this.#outage.active ? this.#outage.reason : undefined, detail);
      if (reason === undefined) return SETTLE;
      // A dependency failure is released whatever the switch says: nothing to turn away.
      return { afterTrip: false, transition: this.#enterTripped('rule', reason, false) };
    }
    const failed = result === 'failure';
    const now = this.clock.now();
    this.#rules.window?.record(now, failed);
    if (!failed) {
      this.#rules.succeeded();
      this.#lastSuccessAt = now;
      this.#successes++;
      // The outage is over: the next one has its own budget and its backoff starts over.
      if (this.#outage.succeeded()) this.#consecutiveTrips = 0;
      return SETTLE;
    }
    // A message that was already failing while other messages succeeded fails for its own sake
    // (the last messages in flight at the end of a drain were poison): it neither lengthens the
    // run of failures nor, while recovering, counts as the outage going on.
    const ownFault =
      facts.firstFailureAt !== undefined &&
      this.#lastSuccessAt !== undefined &&
      facts.firstFailureAt < this.#lastSuccessAt;
    // A suspect failing again after others succeeded, while the endpoint recovers: set aside,
    // uncounted, until the endpoint has recovered (then its own retry policy decides).
    if (
      this.#outage.active &&
      !ownFault &&
      this.config.enabled &&
      this.#outage.suspects.cleared(facts.messageId, this.#successes)
    ) {
      return { afterTrip: true, delayMs: this.restartDelay(Math.max(1, this.#consecutiveTrips)) };
    }
    this.#rules.failed(ownFault);
    if (!this.config.enabled) return SETTLE;
    if (this.#outage.active && !ownFault) {
      const reason = `failure while recovering from: ${this.#outage.reason}`;
      this.#outage.suspects.mark(facts.messageId, this.#successes);
      return { afterTrip: true, delayMs: BEHIND_MS, transition: this.#enterTripped('rule', reason, false) };
    }
    const reason = this.#rules.fired(now, ownFault);
    if (reason === undefined) return SETTLE;
    return { afterTrip: false, transition: this.#enterTripped('rule', reason, false) };
  }

  #probe(result: OutcomeClass, facts: OutcomeFacts): Observation {
    const { detail } = facts;
    this.#probesInFlight--;
    if (result === 'neutral') return SETTLE;
    // A suspect failing again after others succeeded says nothing of the outage: no verdict, the
    // slot goes to another message, and the suspect is set aside as while recovering.
    if (result === 'failure' && this.#outage.suspects.cleared(facts.messageId, this.#successes)) {
      return { afterTrip: true, delayMs: this.restartDelay(Math.max(1, this.#consecutiveTrips)) };
    }
    if (result === 'failure' || result === 'dependency') {
      const what =
        result === 'dependency' ? `probe failed: dependency failure${detail ? ` (${detail})` : ''}` : 'probe failed';
      // Turned away, never dead-lettered: an outage costs its threshold once, not once per probe.
      // Released behind the others, so that the next probe tests another message.
      if (result === 'failure') this.#outage.suspects.mark(facts.messageId, this.#successes);
      return { afterTrip: true, delayMs: BEHIND_MS, transition: this.#enterTripped('probe-failed', what, false) };
    }
    this.#probesSucceeded++;
    this.#successes++;
    this.#lastSuccessAt = this.clock.now();
    if (this.#probesSucceeded < this.config.probeMessages) return SETTLE;
    const reason = `${this.#probesSucceeded} probe message(s) succeeded`;
    return { afterTrip: false, transition: this.#enterClosed('probe-succeeded', reason) };
  }

  #enterTripped(cause: TransitionCause, reason: string, manual: boolean): Transition {
    const from = this.#state;
    const at = this.clock.now();
    if (!manual) {
      this.#consecutiveTrips++;
      this.#outage.tripped(reason);
    }
    this.#enter('tripped');
    this.#trip = manual
      ? { manual, reason, at }
      : { manual, reason, at, restartAt: at + this.restartDelay(this.#consecutiveTrips) };
    return this.#transition(from, cause, reason, manual, at);
  }

  #enterClosed(cause: TransitionCause, reason: string): Transition {
    const from = this.#state;
    const at = this.clock.now();
    this.#enter('closed');
    // Closed again after an automatic trip: recovering until enough successes in a row. A probe
    // that succeeded keeps the backoff growing should it trip again meanwhile; a reset clears it.
    this.#trip = undefined;
    if (cause === 'reset') this.#consecutiveTrips = 0;
    this.#outage.recovering = this.#outage.active ? this.#rules.recoveryLength() : 0;
    this.#rules.clear();
    return this.#transition(from, cause, reason, cause === 'reset', at);
  }

  #enter(state: KillSwitchState): void {
    this.#state = state;
    this.#generation++;
    this.#probesInFlight = 0;
    this.#probesSucceeded = 0;
  }

  #transition(from: KillSwitchState, cause: TransitionCause, reason: string, manual: boolean, at: number): Transition {
    const restartAt = this.#state === 'tripped' ? this.#trip?.restartAt : undefined;
    return {
      from,
      to: this.#state,
      cause,
      reason,
      at,
      manual,
      consecutiveTrips: this.#consecutiveTrips,
      ...(restartAt !== undefined ? { restartAt } : {}),
    };
  }
}
