import type { Logger } from 'pino';
import type { Envelope } from '../envelope/envelope.js';
import type { Clock } from '../internal/clock.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import type { Outcome } from '../pipeline/outcome.js';
import { type Gate, RELEASED_BY_KILL_SWITCH } from '../pipeline/stages/gate-stage.js';

import type { BusEvents } from '../telemetry/events.js';
import type { KillSwitchChange } from './kill-switch-events.js';
import { redactSecrets } from '../telemetry/logger.js';
import { onAbort } from '../internal/abort.js';
import { BadInputReasons } from '../errors/fault.js';
import { classifyOutcome } from './classify-outcome.js';
import type { KillSwitchConfig } from './kill-switch-config.js';
import {
  Admission,
  KillSwitchPolicy,
  type KillSwitchState,
  type OutcomeFacts,
  type Transition,
} from './kill-switch-policy.js';
import { SluiceHeader } from '../transport/headers.js';

/** The consumer the switch pauses and resumes (the endpoint). */
export interface PausableConsumer {
  pause(): Promise<void>;
  resume(): Promise<void>;
}

/** The most recent failure the switch saw: enough to tell an operator what broke. */
export interface LastFailure {
  readonly at: string;
  /**
   * The dead-letter reason, `redelivery` for a failed delivery released for a later attempt, or
   * `dependency` for a dependency failure.
   */
  readonly reason: string;
  /** Secrets in connection strings are masked. */
  readonly description: string;
  readonly errorName?: string;
  readonly messageId?: string;
  readonly messageType?: string;
}

/** A JSON-ready view of one endpoint's kill switch (in `bus.health()` and `GET /health/endpoints`). */
export interface KillSwitchView {
  readonly state: KillSwitchState;
  /** Automatic rules on (`killSwitch.enabled`). */
  readonly enabled: boolean;
  /** Tripped by an operator: stays tripped until reset. */
  readonly manual: boolean;
  /** Why it tripped (while tripped or probing). */
  readonly reason?: string;
  readonly trippedAt?: string;
  /** When probing starts (automatic trips). */
  readonly restartAt?: string;
  readonly consecutiveTrips: number;
  readonly consecutiveFailures: number;
  readonly consecutiveDependencyFailures: number;
  /** Closed after an automatic trip and not yet trusted: one failure trips it again (see docs/kill-switch.md). */
  readonly recovering?: { readonly successesNeeded: number };
  /** The failure-rate window's counts, when that rule is configured. */
  readonly window?: { readonly messages: number; readonly failures: number; readonly windowMs: number };
  readonly probes?: { readonly inFlight: number; readonly succeeded: number; readonly needed: number };
  /** Trips since start. */
  readonly trips: number;
  /** Deliveries the switch gave back to the broker since start. */
  readonly released: number;
  readonly lastFailure?: LastFailure;
}

/** What code and the health routes can do with one endpoint's kill switch. */
export interface KillSwitchControl {
  readonly endpoint: string;
  readonly state: KillSwitchState;
  view(): KillSwitchView;
  /** Trips by hand with a reason: the consumer pauses and stays paused until {@link reset}. Idempotent. */
  trip(reason: string): void;
  /** Closes the switch (from tripped or probing), clears its counts and backoff, resumes the consumer. Idempotent. */
  reset(reason?: string): void;
}

export interface KillSwitchOptions {
  readonly endpoint: string;
  readonly config: KillSwitchConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly emit: <E extends keyof BusEvents>(event: E, payload: BusEvents[E]) => void;
  /** The consumer to pause and resume; undefined while there is none running (before start, while stopping). */
  readonly consumer: () => PausableConsumer | undefined;
  /** Counts the deliveries that wait for a probe slot as waiting. */
  readonly waits?: WaitGauge;
}

interface Waiter {
  readonly resolve: (ticket: number) => void;
  /** Stops listening for the endpoint's stop. */
  unsubscribe: () => void;
}

const EVENT_OF: Record<Transition['cause'], keyof BusEvents> = {
  rule: 'killswitch.tripped',
  'probe-failed': 'killswitch.tripped',
  manual: 'killswitch.tripped',
  restart: 'killswitch.probing',
  'probe-succeeded': 'killswitch.closed',
  reset: 'killswitch.reset',
};

/**
 * One endpoint's kill switch at run time: the {@link KillSwitchPolicy} decides; this class carries
 * out. It schedules the restart on the clock, pauses the consumer while tripped and resumes it for
 * probing, holds deliveries that wait for a probe slot, logs every state change and emits it as a
 * bus event. Used from one event loop; listeners may call `trip`/`reset` re-entrantly.
 */
export class KillSwitch implements Gate, KillSwitchControl {
  readonly #policy: KillSwitchPolicy;
  readonly #waiters = new Set<Waiter>();
  /**
   * Bad-input dead letters already counted by the gate (decided after it: the ordering guard's
   * `future-timestamp`). Their outcome passes the gate's outer check too on its way back, which
   * counts the bad input decided before the gate: it must not count these a second time.
   */
  readonly #countedBadInput = new WeakSet<Outcome>();
  #cancelRestart: (() => void) | undefined;
  #applied: 'running' | 'paused' = 'running';
  #syncing = false;
  #closed = false;
  #trips = 0;
  #released = 0;
  #lastFailure: LastFailure | undefined;

  constructor(private readonly options: KillSwitchOptions) {
    this.#policy = new KillSwitchPolicy(options.config, options.clock);
  }

  get endpoint(): string {
    return this.options.endpoint;
  }

  get state(): KillSwitchState {
    return this.#policy.state;
  }

  releasesAll(): boolean {
    if (this.#policy.state !== 'tripped') return false;
    this.#released++;
    this.#sync();
    return true;
  }

  admit(signal: AbortSignal): number | Promise<number> {
    const ticket = this.#policy.admit();
    if (ticket === Admission.release) {
      this.#released++;
      this.#sync();
      return ticket;
    }
    if (ticket !== Admission.wait) return ticket;
    if (signal.aborted || this.#closed) return Admission.shutdown;
    return new Promise<number>((resolve) => {
      const waiter: Waiter = { resolve, unsubscribe: () => {} };
      this.#waiters.add(waiter);
      this.options.waits?.enter();
      // One shared listener on the endpoint's signal, however many deliveries wait.
      waiter.unsubscribe = onAbort(signal, () => {
        if (this.#waiters.delete(waiter)) this.options.waits?.leave();
        resolve(Admission.shutdown);
      });
    });
  }

  isProbe(ticket: number): boolean {
    return this.#policy.isProbe(ticket);
  }

  observe(ticket: number, outcome: Outcome, envelope: Envelope | undefined): Outcome {
    if (outcome.kind === 'deadLetter' && BadInputReasons.has(outcome.fault.reason)) {
      if (ticket === Admission.unadmitted) {
        if (this.#countedBadInput.has(outcome)) return outcome;
      } else this.#countedBadInput.add(outcome);
    }
    const result = classifyOutcome(outcome, this.options.config.countBadInput);
    if (result === 'failure' || result === 'dependency') {
      this.#lastFailure = lastFailureOf(outcome, envelope, this.options.clock.now());
    }
    const { afterTrip, delayMs, transition } = this.#policy.record(ticket, result, factsOf(outcome, envelope));
    if (transition) this.#apply(transition);
    else if (this.#waiters.size > 0) this.#admitWaiters();
    if (afterTrip && (outcome.kind === 'deadLetter' || outcome.kind === 'retry')) {
      this.#released++;
      // Untouched (this failure is not recorded on the message): the outage costs it no attempt.
      return delayMs === undefined ? RELEASED_BY_KILL_SWITCH : { kind: 'released', reason: 'kill-switch', delayMs };
    }
    return outcome;
  }

  trip(reason: string): void {
    const transition = this.#policy.trip(reason);
    if (transition) this.#apply(transition);
  }

  reset(reason = 'reset by operator'): void {
    const transition = this.#policy.reset(reason);
    if (transition) this.#apply(transition);
  }

  view(): KillSwitchView {
    const snapshot = this.#policy.snapshot();
    const { trip, window } = snapshot;
    const rate = this.options.config.failureRate;
    return {
      state: snapshot.state,
      enabled: this.options.config.enabled,
      manual: trip?.manual ?? false,
      ...(trip
        ? {
            reason: trip.reason,
            trippedAt: iso(trip.at),
            ...(trip.restartAt !== undefined && snapshot.state === 'tripped' ? { restartAt: iso(trip.restartAt) } : {}),
          }
        : {}),
      consecutiveTrips: snapshot.consecutiveTrips,
      consecutiveFailures: snapshot.consecutiveFailures,
      consecutiveDependencyFailures: snapshot.consecutiveDependencyFailures,
      ...(snapshot.recovering ? { recovering: snapshot.recovering } : {}),
      ...(window && rate ? { window: { ...window, windowMs: rate.windowMs } } : {}),
      ...(snapshot.probes ? { probes: snapshot.probes } : {}),
      trips: this.#trips,
      released: this.#released,
      ...(this.#lastFailure ? { lastFailure: this.#lastFailure } : {}),
    };
  }

  /**
   * Stops the restart timer and lets waiting deliveries go (released). Called when the bus stops;
   * the state is kept for the last health view, and the consumer is no longer touched.
   */
  close(): void {
    this.#closed = true;
    this.#cancelRestart?.();
    this.#cancelRestart = undefined;
    for (const waiter of this.#waiters) {
      waiter.unsubscribe();
      this.options.waits?.leave();
      waiter.resolve(Admission.shutdown);
    }
    this.#waiters.clear();
  }

  #apply(transition: Transition): void {
    this.#cancelRestart?.();
    this.#cancelRestart = undefined;
    if (transition.to === 'tripped') this.#trips++;
    if (transition.restartAt !== undefined && !this.#closed)
      this.#scheduleRestart(transition.restartAt - transition.at);
    this.#log(transition);
    const change: KillSwitchChange = {
      endpoint: this.options.endpoint,
      from: transition.from,
      to: transition.to,
      at: iso(transition.at),
      reason: transition.reason,
      manual: transition.manual,
      consecutiveTrips: transition.consecutiveTrips,
      ...(transition.restartAt !== undefined ? { restartAt: iso(transition.restartAt) } : {}),
    };
    this.options.emit(EVENT_OF[transition.cause], change);
    // A listener may have changed the state again; act on where it is now.
    this.#sync();
    this.#admitWaiters();
  }

  #scheduleRestart(inMs: number): void {
    this.#cancelRestart = this.options.clock.setTimer(
      () => {
        this.#cancelRestart = undefined;
        if (this.#closed) return;
        const transition = this.#policy.tick();
        if (transition) return this.#apply(transition);
        // A timer may fire a hair early; wait out the rest.
        const due = this.#policy.restartDueIn();
        if (due !== undefined) this.#scheduleRestart(Math.max(1, due));
      },
      Math.max(0, inMs),
    );
  }

  #log(t: Transition): void {
    const fields = {
      killSwitch: {
        from: t.from,
        to: t.to,
        reason: t.reason,
        manual: t.manual,
        consecutiveTrips: t.consecutiveTrips,
        ...(t.restartAt !== undefined ? { restartInMs: t.restartAt - t.at } : {}),
      },
      ...(t.to === 'tripped' && this.#lastFailure ? { lastFailure: this.#lastFailure } : {}),
    };
    const log = this.options.logger;
    switch (t.cause) {
      case 'rule':
      case 'probe-failed':
        log.error(fields, 'kill switch tripped: consumer paused, failures are released, not dead-lettered');
        return;
      case 'manual':
        log.warn(fields, 'kill switch tripped by hand: consumer paused until reset');
        return;
      case 'restart':
        log.info(fields, 'kill switch probing: consumer resumed for probe messages');
        return;
      case 'probe-succeeded':
        log.info(fields, 'kill switch closed: probes succeeded, consuming again');
        return;
      case 'reset':
        log.info(fields, 'kill switch reset: consuming again');
        return;
    }
  }

  /** Lets waiting deliveries through, or releases them, as the current state allows. */
  #admitWaiters(): void {
    for (const waiter of this.#waiters) {
      const ticket = this.#policy.admit();
      if (ticket === Admission.wait) return;
      if (ticket === Admission.release) this.#released++;
      this.#waiters.delete(waiter);
      this.options.waits?.leave();
      waiter.unsubscribe();
      waiter.resolve(ticket);
    }
  }

  /**
   * Brings the consumer in line with the state: paused while tripped, running otherwise. One pause
   * or resume at a time, so that they cannot overtake each other; a failure is logged and retried on
   * the next state change or released delivery.
   */
  #sync(): void {
    if (this.#syncing || this.#closed) return;
    const want = this.#policy.state === 'tripped' ? 'paused' : 'running';
    if (want === this.#applied) return;
    const consumer = this.options.consumer();
    if (!consumer) return;
    this.#syncing = true;
    const operation = want === 'paused' ? consumer.pause() : consumer.resume();
    operation.then(
      () => {
        this.#applied = want;
        this.#syncing = false;
        this.#sync();
      },
      (error: unknown) => {
        this.#syncing = false;
        this.options.logger.warn(
          { err: error },
          `kill switch could not ${want === 'paused' ? 'pause' : 'resume'} the consumer`,
        );
      },
    );
  }
}

/** The facts of an outcome that has none (every completed message: shared, not allocated). */
const NO_FACTS: OutcomeFacts = Object.freeze({});

function factsOf(outcome: Outcome, envelope: Envelope | undefined): OutcomeFacts {
  switch (outcome.kind) {
    case 'released':
      return outcome.reason === 'dependency' ? { detail: outcome.dependency } : NO_FACTS;
    case 'deadLetter':
      return {
        firstFailureAt: Date.parse(outcome.fault.firstFailureAt),
        ...(envelope ? { messageId: envelope.id } : {}),
      };
    case 'retry': {
      const first = outcome.headers[SluiceHeader.firstFailureAt];
      return {
        ...(first === undefined ? {} : { firstFailureAt: Date.parse(first) }),
        ...(envelope ? { messageId: envelope.id } : {}),
      };
    }
    default:
      return NO_FACTS;
  }
}

function lastFailureOf(outcome: Outcome, envelope: Envelope | undefined, now: number): LastFailure | undefined {
  if (outcome.kind === 'deadLetter') {
    const { fault } = outcome;
    return {
      at: fault.lastFailureAt,
      reason: fault.reason,
      description: redactSecrets(fault.description),
      ...(fault.errorName !== undefined ? { errorName: fault.errorName } : {}),
      ...(fault.messageId !== undefined ? { messageId: fault.messageId } : {}),
      ...(fault.messageType !== undefined ? { messageType: fault.messageType } : {}),
    };
  }
  if (outcome.kind === 'released' && outcome.reason === 'dependency') {
    const error = outcome.error instanceof Error ? outcome.error : undefined;
    return {
      at: iso(now),
      reason: 'dependency',
      description: redactSecrets(
        `${outcome.dependency} failed: ${error ? `${error.name}: ${error.message}` : String(outcome.error)}`,
      ),
      ...(error ? { errorName: error.name } : {}),
      ...(envelope ? { messageId: envelope.id, messageType: envelope.type } : {}),
    };
  }
  if (outcome.kind !== 'retry') return undefined;
  const error = outcome.error instanceof Error ? outcome.error : undefined;
  return {
    at: iso(now),
    reason: 'redelivery',
    description: redactSecrets(
      `attempt ${outcome.attempt} failed; last: ${error ? `${error.name}: ${error.message}` : String(outcome.error)}`,
    ),
    ...(error ? { errorName: error.name } : {}),
    ...(envelope ? { messageId: envelope.id, messageType: envelope.type } : {}),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
