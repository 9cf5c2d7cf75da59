import type { Logger } from 'pino';
import type { Envelope } from '../envelope/envelope.js';
import type { Clock } from '../internal/clock.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import type { Outcome } from '../pipeline/outcome.js';
import { type Gate, RELEASED_BY_KILL_SWITCH } from '../pipeline/stages/gate-stage.js';
import type { BusEvents } from '../telemetry/events.js';
import type { KillSwitchChange } from './kill-switch-events.js';
import { onAbort } from '../internal/abort.js';
import { classifyOutcome } from './classify-outcome.js';
import type { KillSwitchConfig } from './kill-switch-config.js';
import {
  factsOf,
  iso,
  type KillSwitchView,
  killSwitchView,
  type LastFailure,
  lastFailureOf,
} from './kill-switch-view.js';
import { Admission, KillSwitchPolicy, type KillSwitchState, type Transition } from './kill-switch-policy.js';

export type { KillSwitchView, LastFailure } from './kill-switch-view.js';

/** The consumer the switch pauses and resumes (the endpoint). */
export interface PausableConsumer {
  pause(): Promise<void>;
  resume(): Promise<void>;
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
    return killSwitchView(this.#policy.snapshot(), this.options.config, {
      trips: this.#trips,
      released: this.#released,
      lastFailure: this.#lastFailure,
    });
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
