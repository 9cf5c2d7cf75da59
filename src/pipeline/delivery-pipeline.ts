import type { WaitGauge } from '../internal/wait-gauge.js';
import type { Terminal } from './compose.js';
import type { DeliveryContext, DeliveryRun, ValidatedContext } from './context.js';
import { KeyedLimiter } from './keyed-limiter.js';
import { isPromise, type MaybePromise } from './maybe-promise.js';
import { type Outcome, RELEASED_ON_SHUTDOWN } from './outcome.js';
import type { Envelope } from '../envelope/envelope.js';

/** Picks the partition key of a message; `undefined` means no ordering constraint. */
export type PartitionKeyOf = (envelope: Envelope, partitionKey: string | undefined) => string | undefined;

/**
 * What the head of a pipeline returns for a delivery it did not decide: proven valid, it waits for
 * its turn. Should it ever leak (a stage that looked at it), it reads as a release: the message goes
 * back to the broker, never lost.
 */
export const TAKE_TURN: Outcome = Object.freeze({ kind: 'released', reason: 'busy' });

/**
 * Maps the final outcome of a delivery before it is settled, wherever in the pipeline it was
 * decided (a droppable type's dead letter becomes a skip; bad input is shown to the kill switch).
 */
export type OutcomeMapper = (ctx: DeliveryContext, outcome: Outcome) => Outcome;

/** The parts of an endpoint's pipeline, composed once when the endpoint is built. */
export interface PipelineParts {
  /**
   * Before the turn: decides the delivery (an outcome), or proves its context valid and returns
   * {@link TAKE_TURN}. Decode and validate run here, so that bad input is never kept waiting.
   */
  readonly head: Terminal<DeliveryContext>;
  /** Picks the key that orders a message's turn; `undefined` (or no function): none. */
  readonly keyOf: PartitionKeyOf | undefined;
  /** The turn: runs when a slot and the message's key are free (the kill switch's gate, retries, the handler). */
  readonly turn: Terminal<ValidatedContext>;
  /** Applied in order to every outcome, decided in the head or in the turn. */
  readonly mappers: readonly OutcomeMapper[];
  /**
   * Called, in order, for a run whose turn failed with an error rather than an outcome (a bug in a
   * stage), before the error is reported: what a stage of the turn holds for the run is given back.
   */
  readonly abandoned?: readonly ((ctx: DeliveryContext) => void)[];
  /** How many turns run at once. */
  readonly concurrency: number;
}

/** Where the pipeline reports what it decided for each run, exactly once per run. */
export interface PipelineSink<R extends DeliveryRun> {
  /**
   * @param now decided inside the caller's stack (the delivery's own call, or another run's end),
   *   rather than in a promise callback of its own: the endpoint settles it in a microtask.
   */
  outcome(run: R, outcome: Outcome, now: boolean): void;
  /** A bug in a stage (or in the `partitionKey` function), not in the handler. */
  error(run: R, error: unknown, now: boolean): void;
}

/**
 * Runs deliveries through an endpoint's pipeline: the head at once, then the turn when a slot and
 * the message's key are free ({@link KeyedLimiter}), then the mappers; reports each run's outcome to
 * the sink. A run that waits for its turn is queued as it is: no promise, record or suspended
 * stage chain per waiting message, and one promise callback per run whose turn finishes later
 * (issue 18: what waited under a large prefetch was the costliest part of the pipeline).
 */
export class DeliveryPipeline<R extends DeliveryRun> {
  readonly #head: Terminal<DeliveryContext>;
  readonly #keyOf: PartitionKeyOf | undefined;
  readonly #turn: Terminal<ValidatedContext>;
  readonly #mappers: readonly OutcomeMapper[];
  readonly #abandoned: readonly ((ctx: DeliveryContext) => void)[];
  readonly #limiter: KeyedLimiter<R>;

  constructor(
    parts: PipelineParts,
    private readonly sink: PipelineSink<R>,
    waits?: WaitGauge,
  ) {
    this.#head = parts.head;
    this.#keyOf = parts.keyOf;
    this.#turn = parts.turn;
    this.#mappers = parts.mappers;
    this.#abandoned = parts.abandoned ?? [];
    this.#limiter = new KeyedLimiter<R>(parts.concurrency, this.#start, waits);
  }

  /** Turns running now. */
  get running(): number {
    return this.#limiter.running;
  }

  /** Runs waiting for their turn. */
  get waiting(): number {
    return this.#limiter.waiting;
  }

  /** Takes a delivery in. Never throws: every outcome and error goes to the sink. */
  run(run: R): void {
    let decided: MaybePromise<Outcome>;
    try {
      decided = this.#head(run);
    } catch (error) {
      this.sink.error(run, error, true);
      return;
    }
    if (decided === TAKE_TURN) {
      this.#schedule(run);
      return;
    }
    if (!isPromise(decided)) {
      this.#report(run, decided, true);
      return;
    }
    // The head's stages decide without waiting; a promise here is handled all the same.
    decided.then(
      (o) => (o === TAKE_TURN ? this.#schedule(run) : this.#report(run, o, false)),
      (error: unknown) => this.sink.error(run, error, false),
    );
  }

  /** Releases every run still waiting for its turn (the endpoint is stopping). */
  cancelWaiting(): void {
    for (const run of this.#limiter.cancelWaiting()) this.#report(run, RELEASED_ON_SHUTDOWN, true);
  }

  #schedule(run: R): void {
    // Arrived after the endpoint began to stop (a transport whose pause is not instant): hand back.
    if (run.stopping.aborted) {
      this.#report(run, RELEASED_ON_SHUTDOWN, true);
      return;
    }
    const keyOf = this.#keyOf;
    if (keyOf) {
      try {
        run.scheduleKey = keyOf(run.envelope, run.delivery.partitionKey);
      } catch (error) {
        // User code: the endpoint releases the message and dead-letters it after a few deliveries.
        const message = error instanceof Error ? error.message : String(error);
        this.sink.error(
          run,
          new Error(`the endpoint's partitionKey function threw: ${message}`, { cause: error }),
          true,
        );
        return;
      }
    }
    this.#limiter.submit(run);
  }

  /** The limiter's start: the run's turn has come. Reports first, then frees the turn. */
  readonly #start = (run: R): void => {
    let outcome: MaybePromise<Outcome>;
    try {
      outcome = this.#turn(run);
    } catch (error) {
      this.#ended(run, true, true, error);
      return;
    }
    if (!isPromise(outcome)) {
      this.#ended(run, true, false, outcome);
      return;
    }
    outcome.then(
      (o) => this.#ended(run, false, false, o),
      (error: unknown) => this.#ended(run, false, true, error),
    );
  };

  /**
   * The run's turn ended: with an outcome, or with an error when `failed`. Reports it, then frees the
   * turn, even when the report throws (an observer's bug): a slot is never lost.
   */
  #ended(run: R, now: boolean, failed: boolean, result: unknown): void {
    try {
      if (failed) this.#failed(run, result, now);
      else this.#report(run, result as Outcome, now);
    } finally {
      this.#limiter.done(run);
    }
  }

  /** The turn failed with an error: what its stages hold is given back, then the error is reported. */
  #failed(run: R, error: unknown, now: boolean): void {
    const abandoned = this.#abandoned;
    try {
      for (let i = 0; i < abandoned.length; i++) (abandoned[i] as (ctx: DeliveryContext) => void)(run);
    } finally {
      this.sink.error(run, error, now);
    }
  }

  #report(run: R, outcome: Outcome, now: boolean): void {
    const mappers = this.#mappers;
    let mapped = outcome;
    try {
      for (let i = 0; i < mappers.length; i++) mapped = (mappers[i] as OutcomeMapper)(run, mapped);
    } catch (error) {
      this.sink.error(run, error, now);
      return;
    }
    this.sink.outcome(run, mapped, now);
  }
}
