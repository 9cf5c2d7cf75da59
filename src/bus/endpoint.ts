import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { createFault } from '../errors/fault.js';
import { settleWithin } from '../internal/abort.js';
import { microtask } from '../internal/microtask.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import { DeliveryRun, type EndpointInfo } from '../pipeline/context.js';
import { DeliveryPipeline, type PipelineParts, type PipelineSink } from '../pipeline/delivery-pipeline.js';
import type { Outcome, OutcomeObserver } from '../pipeline/outcome.js';
import { type Forward, settle } from '../pipeline/settle.js';
import { describeError, safeError } from '../telemetry/logger.js';
import type { Delivery } from '../transport-core/delivery.js';
import { ACKNOWLEDGED } from '../transport-core/settlement.js';
import type { Transport } from '../transport-core/transport.js';
import { ConsumerSupervisor, type ConsumerSupervisorOptions, type ConsumerView } from './consumer-supervisor.js';
import { type EndpointCounters, EndpointStats } from './endpoint-stats.js';
import { NOT_TRIED, type SettleRetryingOptions, settleRetrying, UNEXPECTED_RELEASE_MS } from './settle-retrying.js';

export type { EndpointCounters } from './endpoint-stats.js';

export type EndpointState = 'created' | 'running' | 'stopping' | 'stopped';

export interface EndpointRuntimeOptions {
  readonly info: EndpointInfo;
  readonly prefetch: number;
  /** The endpoint's pipeline, composed once (see `build-endpoint.ts`). */
  readonly pipeline: PipelineParts;
  readonly logger: Logger;
  /** Sends a copy of a delivery elsewhere (skipped queue). */
  readonly forward: Forward;
  /**
   * Called in this order once per delivery as it leaves, after the endpoint's own counters and logs
   * ({@link EndpointStats}, always first): telemetry, the kill switch, rejection notices, history,
   * `sluice/testing`. The one place a settled outcome is looked at.
   */
  readonly observers: readonly OutcomeObserver[];
  /** How a consumer that stopped on its own is made again (see {@link ConsumerSupervisor}). */
  readonly supervision: Pick<ConsumerSupervisorOptions, 'prepare' | 'config' | 'clock' | 'emit'>;
  /** Counts a delivery as waiting while a failed settlement pauses before its next try. */
  readonly waits?: WaitGauge | undefined;
}

/** A delivery on which the pipeline itself failed this many times is dead-lettered. */
const MAX_UNEXPECTED_DELIVERIES = 5;

/**
 * A delivery's run as the endpoint keeps it: typed with the delivery it settles (the same object;
 * stages see the run through contexts that show only its view).
 */
class EndpointRun extends DeliveryRun {
  declare readonly delivery: Delivery;
}

/**
 * The consume loop of one endpoint: takes deliveries from the transport, runs each through the
 * pipeline and settles it once from the outcome. Stopping drains: no new deliveries, waiting ones
 * are released, running ones get until the timeout, then their signal aborts.
 */
export class Endpoint {
  #state: EndpointState = 'created';
  #consumer: ConsumerSupervisor | undefined;
  #inFlight = 0;
  #idle: (() => void) | undefined;
  readonly #abort = new AbortController();
  readonly #stopping = new AbortController();
  readonly #stats: EndpointStats;
  /** The endpoint's stats first, then the options' observers: looped over per delivery. */
  readonly #observers: readonly OutcomeObserver[];
  readonly #settling: SettleRetryingOptions;
  readonly #pipeline: DeliveryPipeline<EndpointRun>;
  /**
   * Deliveries whose outcome the pipeline decided synchronously, in order, waiting for
   * `#settleDecided`: two arrays rather than an object per delivery.
   */
  readonly #decidedRuns: EndpointRun[] = [];
  readonly #decidedOutcomes: Outcome[] = [];

  readonly #createdAt: string;

  constructor(private readonly options: EndpointRuntimeOptions) {
    this.#createdAt = new Date(options.info.clock.now()).toISOString();
    this.#stats = new EndpointStats(options.logger);
    this.#observers = [this.#stats, ...options.observers];
    const { forward, info, waits } = options;
    this.#settling = { forward, clock: info.clock, waits, observers: this.#observers };
    this.#pipeline = new DeliveryPipeline(options.pipeline, this.#sink, waits);
    // Every in-flight handler may listen on its signal (a fetch given ctx.signal): up to prefetch
    // of them at once, legitimately more than Node's default of ten. Sluice's own waits share one
    // listener per signal (`onAbort`).
    setMaxListeners(options.prefetch + 10, this.#abort.signal);
  }

  get name(): string {
    return this.options.info.name;
  }
  get state(): EndpointState {
    return this.#state;
  }
  /** Counts of final outcomes since start. */
  get counters(): EndpointCounters {
    return this.#stats.counters;
  }
  /** Deliveries received and not yet settled. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The endpoint's consumer: consuming, or since when and why not. */
  get consumer(): ConsumerView {
    return this.#consumer?.view() ?? { state: 'starting', paused: false, since: this.#createdAt, restarts: 0 };
  }

  async start(transport: Transport): Promise<void> {
    const { info, prefetch, logger, supervision } = this.options;
    this.#consumer = new ConsumerSupervisor({
      ...supervision,
      endpoint: info.name,
      logger,
      consume: ({ paused, onStatus }) =>
        transport.consume(info.address, (d) => this.#onDelivery(d), { prefetch, paused, onStatus }),
    });
    await this.#consumer.start();
    this.#state = 'running';
  }

  #onDelivery(delivery: Delivery): void {
    this.#inFlight++;
    this.#stats.counters.received++;
    this.#pipeline.run(
      new EndpointRun(delivery, this.options.info, this.#abort.signal, this.#stopping.signal, this.options.logger),
    );
  }

  /**
   * Where the pipeline reports: an outcome decided inside the caller's stack is settled in a
   * microtask (`#decided`), one decided in a promise callback of its own at once. An error is a bug
   * in a stage (or in a partitionKey function), not in the handler: the message is put back rather
   * than lost, but not forever: after a few deliveries it goes to the dead-letter queue.
   */
  readonly #sink: PipelineSink<EndpointRun> = {
    outcome: (run, outcome, now) => {
      if (now) this.#decided(run, outcome);
      else this.#settleFirst(run, outcome);
    },
    error: (run, error, now) => this.#sink.outcome(run, this.#unexpected(run, error), now),
  };

  /**
   * An outcome decided synchronously is settled in a microtask, never inside the transport's
   * callback (a transport may hand over the next delivery from inside a settlement, which would
   * nest one delivery's run in another's, and the stack would grow with the messages): every stage
   * has seen it already. One microtask settles all the deliveries decided before it runs.
   */
  #decided(run: EndpointRun, outcome: Outcome): void {
    this.#decidedOutcomes.push(outcome);
    if (this.#decidedRuns.push(run) === 1) microtask(this.#settleDecided);
  }

  /**
   * Settles what `#decided` gathered, in order. A delivery a settlement hands over and the
   * pipeline decides at once joins this loop (a trampoline: no nesting).
   */
  readonly #settleDecided = (): void => {
    const runs = this.#decidedRuns;
    const outcomes = this.#decidedOutcomes;
    // An observer that throws (they must not) stops no other delivery's settlement; its error is
    // thrown once the loop is done, uncaught, as it was from a promise callback (unhandled).
    let failure: { error: unknown } | undefined;
    for (let i = 0; i < runs.length; i++) {
      try {
        this.#settleFirst(runs[i] as EndpointRun, outcomes[i] as Outcome);
      } catch (error) {
        failure ??= { error };
      }
    }
    runs.length = 0;
    outcomes.length = 0;
    if (failure) throw failure.error;
  };

  /**
   * The first settlement try of the common case, a completed delivery, without
   * {@link settleRetrying}'s async frame and closure; a failure goes on there as a failed first try.
   */
  #settleFirst(run: EndpointRun, outcome: Outcome): void {
    const { delivery } = run;
    if (outcome.kind !== 'completed') {
      void this.#settleRetrying(run, delivery, outcome, NOT_TRIED);
      return;
    }
    const settled = settle(delivery, outcome, this.options.forward);
    // The broker took it before `complete` returned (the kernel's shared resolved promise): the
    // delivery leaves now, without a promise callback.
    if (settled === ACKNOWLEDGED) {
      this.#finish(run, outcome);
      return;
    }
    settled.then(
      () => this.#finish(run, outcome),
      (error: unknown) => this.#settleRetrying(run, delivery, outcome, error),
    );
  }

  #settleRetrying(run: DeliveryRun, delivery: Delivery, outcome: Outcome, firstTry: unknown): Promise<void> {
    return settleRetrying(run, delivery, outcome, firstTry, this.#settling).then((settled) =>
      this.#finish(run, settled),
    );
  }

  /** The delivery leaves: every observer sees it once, with the outcome it was settled with. */
  #finish(run: DeliveryRun, settled: Outcome | undefined): void {
    this.#inFlight--;
    const observers = this.#observers;
    // A plain loop: this runs for every message.
    for (let i = 0; i < observers.length; i++) observers[i]?.done(run, settled);
    if (this.#inFlight === 0) this.#idle?.();
  }

  #unexpected(run: DeliveryRun, error: unknown): Outcome {
    const { delivery } = run;
    if (delivery.deliveryCount >= MAX_UNEXPECTED_DELIVERIES) {
      run.log.error({ err: safeError(error) }, 'pipeline failed unexpectedly again; dead-lettering the message');
      return {
        kind: 'deadLetter',
        fault: createFault({
          reason: 'permanent-failure',
          description: `the pipeline failed unexpectedly on ${delivery.deliveryCount} deliveries: ${describeError(error)}`,
          error,
          attempts: delivery.deliveryCount,
          endpoint: this.options.info.name,
          originalAddress: delivery.address,
          now: new Date(this.options.info.clock.now()),
        }),
      };
    }
    run.log.error({ err: safeError(error) }, 'pipeline failed unexpectedly; releasing the message');
    return { kind: 'released', reason: 'busy', delayMs: UNEXPECTED_RELEASE_MS };
  }

  async pause(): Promise<void> {
    await this.#consumer?.pause();
  }

  async resume(): Promise<void> {
    await this.#consumer?.resume();
  }

  /**
   * Stops taking deliveries, releases those not started, waits up to `timeoutMs` for running
   * handlers, then aborts their signal and gives the broker back whatever is unsettled.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    this.#stopping.abort(new Error('endpoint stopping'));
    // What waits for its turn when the stop begins is released now, before a running task that
    // finishes while the consumer pauses can start it (nothing enters the limiter after the abort:
    // the pipeline hands such a delivery back); again after the pause, for a transport whose
    // pause hands over what it had already fetched.
    this.#pipeline.cancelWaiting();
    await this.#consumer?.pause();
    this.#pipeline.cancelWaiting();
    if (this.#inFlight > 0) {
      const idle = new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
      if ((await settleWithin(idle, timeoutMs)) === 'timeout') {
        this.options.logger.warn({ inFlight: this.#inFlight }, 'shutdown timeout: aborting running handlers');
        this.#abort.abort(new Error('endpoint stopping'));
      }
    }
    await this.#consumer?.close({ drainTimeoutMs: 0 });
    this.#state = 'stopped';
  }
}
