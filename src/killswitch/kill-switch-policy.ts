import type { Clock } from '../internal/clock.js';
import { FailureWindow } from './failure-window.js';
import type { KillSwitchConfig } from './kill-switch-config.js';

/**
 * `closed`: messages flow and final outcomes are counted. `tripped`: nothing is admitted (the
 * consumer is paused). `probing`: a few messages are admitted to test whether the cause is gone.
 */
export type KillSwitchState = 'closed' | 'tripped' | 'probing';

/** How a final outcome counts: `neutral` outcomes (stale, retry-later, ignored bad input) count for nothing. */
export type OutcomeClass = 'success' | 'failure' | 'neutral';

/**
 * Answers of {@link KillSwitchPolicy.admit} besides a ticket (a ticket is ≥ 0). `unadmitted` is the
 * ticket of an outcome decided before admission (bad input, from decode or validate).
 */
export const Admission = {
  release: -1,
  wait: -2,
  unadmitted: -3,
  shutdown: -4,
} as const;

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
   * The outcome arrived after the switch tripped (from a message admitted before): it was not
   * counted, and a failure should be released rather than dead-lettered.
   */
  readonly afterTrip: boolean;
  readonly transition?: Transition;
}

export interface KillSwitchSnapshot {
  readonly state: KillSwitchState;
  readonly trip?: TripInfo;
  readonly consecutiveTrips: number;
  readonly consecutiveFailures: number;
  readonly window?: { readonly messages: number; readonly failures: number };
  readonly probes?: { readonly inFlight: number; readonly succeeded: number; readonly needed: number };
}

const SETTLE: Observation = Object.freeze({ afterTrip: false });
const AFTER_TRIP: Observation = Object.freeze({ afterTrip: true });

/**
 * The kill switch as a state machine over plain data: no timers, no I/O; time comes from the
 * injected clock's `now()`. The runtime (`KillSwitch`) schedules the restart (calling {@link tick})
 * and pauses the consumer; this class only decides.
 *
 * - closed → tripped when a rule fires on a counted failure (N consecutive failures, or a failure
 *   rate over a sliding window once a minimum of messages was seen).
 * - tripped → probing after the restart delay: `initial × factor^(trips in a row − 1)`, capped.
 * - probing admits `probeMessages`; when all succeeded → closed; the first failure → tripped.
 * - `trip(reason)` from any state → tripped for good (manual); `reset()` → closed, counts cleared.
 *
 * Each state entry starts a new generation; the ticket `admit` returns is the generation, so an
 * outcome of a message admitted before the last state change is recognised and not counted.
 */
export class KillSwitchPolicy {
  #state: KillSwitchState = 'closed';
  #generation = 0;
  #trip: TripInfo | undefined;
  #consecutiveTrips = 0;
  #consecutiveFailures = 0;
  #probesInFlight = 0;
  #probesSucceeded = 0;
  readonly #window: FailureWindow | undefined;

  constructor(
    private readonly config: KillSwitchConfig,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    this.#window = config.failureRate ? new FailureWindow(config.failureRate.windowMs) : undefined;
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

  /**
   * Records the final outcome of a message admitted with `ticket` (or `Admission.unadmitted`).
   * Counted only when admitted in the current state; the outcome that trips the switch is itself
   * settled as decided (`afterTrip: false`).
   */
  record(ticket: number, result: OutcomeClass): Observation {
    if (ticket === this.#generation) {
      if (this.#state === 'closed') return this.#count(result);
      if (this.#state === 'probing') return this.#probe(result);
    }
    if (ticket === Admission.unadmitted) {
      if (this.#state === 'closed') return this.#count(result);
      // Probing resumed the consumer: releasing bad input would only bring it straight back.
      return this.#state === 'tripped' ? AFTER_TRIP : SETTLE;
    }
    return this.#state === 'closed' ? SETTLE : AFTER_TRIP;
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

  /** Closes from any state and clears the counts and the restart backoff. Idempotent when closed. */
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

  #count(result: OutcomeClass): Observation {
    if (result === 'neutral') return SETTLE;
    const failed = result === 'failure';
    this.#consecutiveFailures = failed ? this.#consecutiveFailures + 1 : 0;
    // The clock is read only when a window needs it or a failure may trip: not on the hot path.
    const now = this.#window || failed ? this.clock.now() : 0;
    this.#window?.record(now, failed);
    if (!failed || !this.config.enabled) return SETTLE;
    const reason = this.#firedRule(now);
    if (reason === undefined) return SETTLE;
    return { afterTrip: false, transition: this.#enterTripped('rule', reason, false) };
  }

  #firedRule(now: number): string | undefined {
    const limit = this.config.consecutiveFailures;
    if (limit !== false && this.#consecutiveFailures >= limit) {
      return `${this.#consecutiveFailures} consecutive failures`;
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

  #probe(result: OutcomeClass): Observation {
    this.#probesInFlight--;
    if (result === 'neutral') return SETTLE;
    if (result === 'failure') {
      return { afterTrip: false, transition: this.#enterTripped('probe-failed', 'probe failed', false) };
    }
    this.#probesSucceeded++;
    if (this.#probesSucceeded < this.config.probeMessages) return SETTLE;
    const reason = `${this.#probesSucceeded} probe message(s) succeeded`;
    return { afterTrip: false, transition: this.#enterClosed('probe-succeeded', reason) };
  }

  #enterTripped(cause: TransitionCause, reason: string, manual: boolean): Transition {
    const from = this.#state;
    const at = this.clock.now();
    if (!manual) this.#consecutiveTrips++;
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
    this.#trip = undefined;
    this.#consecutiveTrips = 0;
    this.#consecutiveFailures = 0;
    this.#window?.clear();
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

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}
