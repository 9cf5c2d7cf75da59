import type { Clock } from '../internal/clock.js';
import { Admission } from '../pipeline/admission.js';
import { FailureWindow } from './failure-window.js';
import { OutageSuspects } from './outage-suspects.js';
import { RecentOutcomes } from './recent-outcomes.js';
import type { KillSwitchConfig } from './kill-switch-config.js';

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

/** Successes that end an outage when the consecutive-failures rule is off. */
const DEFAULT_RECOVERY_SUCCESSES = 10;
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
 * - closed → tripped when a rule fires on a counted failure: `dependencyFailures` dependency
 *   failures in a row; `consecutiveFailures` handler failures in a row that are also no fewer than
 *   the successes among the last `recentOutcomes` outcomes; or a failure rate over a sliding window
 *   once a minimum of messages was seen. A message that first failed before the last success
 *   failed for its own sake: it does not lengthen the run.
 * - tripped → probing after the restart delay: `initial × factor^(trips in a row − 1)`, capped.
 * - probing admits `probeMessages` (each gets one attempt); when all succeeded → closed; the first
 *   failure → tripped, and the failed probe is released behind the waiting messages (no attempt
 *   spent, never dead-lettered).
 * - `trip(reason)` from any state → tripped for good (manual); `reset()` → closed, counts cleared.
 *
 * The budget of dead letters is per outage, not per trip: after an automatic trip the endpoint is
 * *recovering* until as many successes in a row as `consecutiveFailures` (10 when off) came after
 * it closed again (by a probe or a reset); while recovering the first failure trips the switch
 * again and is released, not dead-lettered, and the backoff keeps growing.
 *
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
  #consecutiveFailures = 0;
  #consecutiveDependency = 0;
  #probesInFlight = 0;
  #probesSucceeded = 0;
  /** Successes still needed after an automatic trip before the outage counts as over; 0: none. */
  #recovering = 0;
  /** An automatic trip happened and the endpoint has not proved healthy since. */
  #outage = false;
  /** Why the outage's first automatic trip fired (for the reason of the trips that follow). */
  #outageReason = '';
  /** When a counted outcome last succeeded (epoch ms). */
  #lastSuccessAt: number | undefined;
  /** Counted successes (probes included) since start: orders suspects and successes without a clock. */
  #successes = 0;
  /** Messages whose failure tripped the switch during the current outage. */
  readonly #suspects = new OutageSuspects();
  readonly #window: FailureWindow | undefined;
  readonly #recent: RecentOutcomes;

  constructor(
    private readonly config: KillSwitchConfig,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    this.#window = config.failureRate ? new FailureWindow(config.failureRate.windowMs) : undefined;
    this.#recent = new RecentOutcomes(config.recentOutcomes);
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
      consecutiveFailures: this.#consecutiveFailures,
      consecutiveDependencyFailures: this.#consecutiveDependency,
      ...(this.#state === 'closed' && this.#outage ? { recovering: { successesNeeded: this.#recovering } } : {}),
      ...(this.#window && rate ? { window: this.#window.counts(this.clock.now()) } : {}),
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
      this.#consecutiveDependency++;
      if (!this.config.enabled) return SETTLE;
      const limit = this.#outage ? 1 : this.config.dependencyFailures;
      if (limit === false || this.#consecutiveDependency < limit) return SETTLE;
      const what = detail === undefined ? '' : ` (${detail})`;
      const reason = this.#outage
        ? `dependency failure${what} while recovering from: ${this.#outageReason}`
        : `${this.#consecutiveDependency} consecutive dependency failures${what}`;
      // A dependency failure is released whatever the switch says: nothing to turn away.
      return { afterTrip: false, transition: this.#enterTripped('rule', reason, false) };
    }
    const failed = result === 'failure';
    const now = this.clock.now();
    this.#window?.record(now, failed);
    if (!failed) {
      this.#recent.record(false);
      this.#lastSuccessAt = now;
      this.#successes++;
      this.#consecutiveFailures = 0;
      this.#consecutiveDependency = 0;
      if (this.#outage && --this.#recovering <= 0) {
        // The outage is over: the next one has its own budget and its backoff starts over.
        this.#outage = false;
        this.#consecutiveTrips = 0;
        this.#suspects.clear();
      }
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
    if (this.#outage && !ownFault && this.config.enabled && this.#suspects.cleared(facts.messageId, this.#successes)) {
      return { afterTrip: true, delayMs: this.restartDelay(Math.max(1, this.#consecutiveTrips)) };
    }
    if (!ownFault) {
      this.#consecutiveFailures++;
      this.#recent.record(true);
    }
    if (!this.config.enabled) return SETTLE;
    if (this.#outage && !ownFault) {
      const reason = `failure while recovering from: ${this.#outageReason}`;
      this.#suspects.mark(facts.messageId, this.#successes);
      return { afterTrip: true, delayMs: BEHIND_MS, transition: this.#enterTripped('rule', reason, false) };
    }
    const reason = this.#firedRule(now, ownFault);
    if (reason === undefined) return SETTLE;
    return { afterTrip: false, transition: this.#enterTripped('rule', reason, false) };
  }

  #firedRule(now: number, ownFault: boolean): string | undefined {
    const limit = this.config.consecutiveFailures;
    const run = this.#consecutiveFailures;
    if (!ownFault && limit !== false && run >= limit) {
      // Weighed against the recent past: a run right after a healthy stretch must outnumber it.
      const { failures, successes } = this.#recent.counts();
      if (this.#recent.size === 0 || failures >= successes) return `${run} consecutive failures`;
    }
    const rate = this.config.failureRate;
    if (!rate || !this.#window) return undefined;
    const { messages, failures } = this.#window.counts(now);
    if (messages < rate.minimumMessages || failures / messages < rate.threshold) return undefined;
    return (
      `failure rate ${percent(failures / messages)} reached ${percent(rate.threshold)}: ` +
      `${failures} of ${messages} messages in ${rate.windowMs} ms`
    );
  }

  #probe(result: OutcomeClass, facts: OutcomeFacts): Observation {
    const { detail } = facts;
    this.#probesInFlight--;
    if (result === 'neutral') return SETTLE;
    // A suspect failing again after others succeeded says nothing of the outage: no verdict, the
    // slot goes to another message, and the suspect is set aside as while recovering.
    if (result === 'failure' && this.#suspects.cleared(facts.messageId, this.#successes)) {
      return { afterTrip: true, delayMs: this.restartDelay(Math.max(1, this.#consecutiveTrips)) };
    }
    if (result === 'failure' || result === 'dependency') {
      const what =
        result === 'dependency' ? `probe failed: dependency failure${detail ? ` (${detail})` : ''}` : 'probe failed';
      // Turned away, never dead-lettered: an outage costs its threshold once, not once per probe.
      // Released behind the others, so that the next probe tests another message.
      if (result === 'failure') this.#suspects.mark(facts.messageId, this.#successes);
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
      if (!this.#outage) this.#outageReason = reason;
      this.#outage = true;
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
    this.#recovering = this.#outage ? this.#recoveryLength() : 0;
    this.#consecutiveFailures = 0;
    this.#consecutiveDependency = 0;
    this.#recent.clear();
    this.#window?.clear();
    return this.#transition(from, cause, reason, cause === 'reset', at);
  }

  #recoveryLength(): number {
    const limit = this.config.consecutiveFailures;
    return limit === false ? DEFAULT_RECOVERY_SUCCESSES : limit;
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

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}
