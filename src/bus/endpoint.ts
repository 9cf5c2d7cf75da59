import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { BadInputReasons, createFault, type FaultDetails } from '../errors/fault.js';
import { AlreadySettledError, LockLostError } from '../errors/sluice-error.js';
import { delay } from '../internal/abort.js';
import { describeError, safeError } from '../telemetry/logger.js';
import { settleWithin } from '../internal/abort.js';
import { type DeliveryContext, DeliveryRun, type EndpointInfo } from '../pipeline/context.js';
import type { Terminal } from '../pipeline/compose.js';
import type { KeyedLimiter } from '../pipeline/keyed-limiter.js';
import type { Outcome, SkipReason } from '../pipeline/outcome.js';
import { type Forward, settle } from '../pipeline/settle.js';
import { isRetryable } from '../retry/retry-policy.js';
import { unforwardable } from './forward-failure.js';
import type { Delivery } from '../transport/delivery.js';
import type { Transport } from '../transport/transport.js';
import type { EndpointTelemetry } from '../pipeline/endpoint-telemetry.js';
import { ConsumerSupervisor, type ConsumerSupervisorOptions, type ConsumerView } from './consumer-supervisor.js';
import type { DeliveryObserver } from '../pipeline/delivery-observer.js';
import type { WaitGauge } from '../internal/wait-gauge.js';

export type EndpointState = 'created' | 'running' | 'stopping' | 'stopped';

/** Counts of final outcomes since start. */
export interface EndpointCounters {
  received: number;
  completed: number;
  skipped: number;
  retried: number;
  deadLettered: number;
  released: number;
  /** Deliveries released because a dependency failed (also counted in `released`): no attempt spent. */
  dependencyFailures: number;
  /** Settlements the broker refused (lock lost): those messages come back. */
  settleFailures: number;
  /** `skipped`, by reason (`duplicate`, `stale`, `tombstoned`, ...). */
  skippedByReason: Partial<Record<SkipReason, number>>;
}

export interface EndpointRuntimeOptions {
  readonly info: EndpointInfo;
  readonly prefetch: number;
  readonly run: Terminal<DeliveryContext>;
  readonly limiter: KeyedLimiter;
  readonly logger: Logger;
  /** Sends a copy of a delivery elsewhere (skipped queue). */
  readonly forward: Forward;
  /** Called after a message was dead-lettered for bad input (rejection notices). */
  readonly onBadInput?: (fault: FaultDetails, delivery: Delivery) => Promise<void>;
  /** Ends each delivery's span and counts its outcome (see `docs/observability.md`). */
  readonly telemetry?: EndpointTelemetry;
  /** How a consumer that stopped on its own is made again (see {@link ConsumerSupervisor}). */
  readonly supervision: Pick<ConsumerSupervisorOptions, 'prepare' | 'config' | 'clock' | 'emit'>;
  /** Counts a delivery as waiting while a failed settlement pauses before its next try. */
  readonly waits?: WaitGauge | undefined;
  /** Sees each delivery leave the endpoint, with the outcome it was settled with (`sluice/testing`). */
  readonly observer?: DeliveryObserver | undefined;
}

const UNEXPECTED_RELEASE_MS = 1_000;
/** A delivery on which the pipeline itself failed this many times is dead-lettered. */
const MAX_UNEXPECTED_DELIVERIES = 5;
/** Settlement attempts (backoff from SETTLE_RETRY_MS, doubling) before the message is given back. */
const SETTLE_ATTEMPTS = 4;
const SETTLE_RETRY_MS = 250;
/** Passed to {@link Endpoint.#settle} when no settlement was tried yet. */
const NOT_TRIED: unique symbol = Symbol('not tried');

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
  readonly counters: EndpointCounters = {
    received: 0,
    completed: 0,
    skipped: 0,
    retried: 0,
    deadLettered: 0,
    released: 0,
    dependencyFailures: 0,
    settleFailures: 0,
    skippedByReason: {},
  };

  readonly #createdAt: string;

  constructor(private readonly options: EndpointRuntimeOptions) {
    this.#createdAt = new Date(options.info.clock.now()).toISOString();
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
    this.counters.received++;
    const run = new DeliveryRun(
      delivery,
      this.options.info,
      this.#abort.signal,
      this.#stopping.signal,
      this.options.logger,
    );
    // Promise callbacks rather than an async frame per delivery: this runs for every message.
    let outcome: Promise<Outcome>;
    try {
      outcome = this.options.run(run);
    } catch (error) {
      outcome = Promise.reject(error);
    }
    outcome.then(
      (o) => this.#settleFirst(run, o),
      // A bug in a stage (or in a partitionKey function), not in the handler: put the message back
      // rather than lose it, but not forever: after a few deliveries it goes to the dead-letter queue.
      (error: unknown) => this.#settleFirst(run, this.#unexpected(run, error)),
    );
  }

  /**
   * The first settlement try of the common case, a completed delivery, without {@link #settle}'s
   * async frame and closure; a failure goes on in {@link #settle} as a failed first try.
   */
  #settleFirst(run: DeliveryRun, outcome: Outcome): void {
    if (outcome.kind !== 'completed') {
      void this.#settle(run, outcome, NOT_TRIED).then((settled) => this.#finish(run, settled));
      return;
    }
    settle(run.delivery, outcome, this.options.forward).then(
      () => {
        this.#record(run, outcome);
        this.#finish(run, outcome);
      },
      (error: unknown) => {
        void this.#settle(run, outcome, error).then((settled) => this.#finish(run, settled));
      },
    );
  }

  #finish(run: DeliveryRun, settled: Outcome | undefined): void {
    this.#inFlight--;
    this.options.observer?.done(run, settled);
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

  /**
   * Settles once. A settlement the broker refuses because the lock is gone is final (the broker
   * redelivers). Any other failure (a broker hiccup writing a dead-letter or delayed copy, a failed
   * forward) is retried with backoff; if it still fails, the message is given back to the broker.
   * The delivery counts as in flight until then, so no prefetch slot leaks silently. A forward to
   * the skipped queue that is refused (not retryable) or fails on every try is not given back (it
   * would fail again on each delivery, forever): the message is dead-lettered, saying why.
   * Returns the outcome settled with, or `undefined` when the message was not settled by it.
   */
  async #settle(ctx: DeliveryContext, settling: Outcome, firstTry: unknown): Promise<Outcome | undefined> {
    let outcome = settling;
    let forwardError: unknown;
    const forward: Forward = (...args) =>
      this.options.forward(...args).catch((error: unknown) => {
        forwardError = error;
        throw error;
      });
    // The first try's failure when the caller made it already (see #settleFirst).
    let failedTry = firstTry;
    for (let attempt = 1; ; attempt++) {
      forwardError = undefined;
      try {
        if (failedTry !== NOT_TRIED) {
          const error = failedTry;
          failedTry = NOT_TRIED;
          throw error;
        }
        await settle(ctx.delivery, outcome, forward);
        break;
      } catch (error) {
        this.counters.settleFailures++;
        this.options.telemetry?.settleFailed(ctx, outcome, error);
        if (error instanceof LockLostError || error instanceof AlreadySettledError) {
          ctx.log.warn(
            { err: safeError(error), outcome: outcome.kind },
            'lock lost before settling; the broker redelivers',
          );
          return undefined;
        }
        if (
          forwardError !== undefined &&
          outcome.kind === 'skipped' &&
          outcome.forwardTo !== undefined &&
          (!isRetryable(forwardError) || attempt >= SETTLE_ATTEMPTS) &&
          !ctx.stopping.aborted
        ) {
          ctx.log.warn(
            { err: safeError(forwardError), forwardTo: outcome.forwardTo, tries: attempt },
            'cannot move the message to the skipped queue; dead-lettering it',
          );
          outcome = unforwardable(ctx, { ...outcome, forwardTo: outcome.forwardTo }, forwardError, attempt);
          attempt = 0;
          continue;
        }
        if (attempt < SETTLE_ATTEMPTS && !ctx.stopping.aborted) {
          const waitMs = SETTLE_RETRY_MS * 2 ** (attempt - 1);
          ctx.log.warn(
            { err: safeError(error), outcome: outcome.kind, retryInMs: waitMs },
            'settling failed; trying again',
          );
          const { waits } = this.options;
          waits?.enter();
          await delay(waitMs, ctx.stopping, this.options.info.clock)
            .catch(() => {})
            .finally(() => waits?.leave());
          continue;
        }
        try {
          // A failed settlement leaves the delivery open (the Delivery contract): when the delayed
          // release fails too, a plain release gives the message back as it is (never held for good).
          await ctx.delivery
            .release({ delayMs: UNEXPECTED_RELEASE_MS })
            .catch((delayed: unknown) =>
              delayed instanceof LockLostError ? Promise.reject(delayed) : ctx.delivery.release(),
            );
          ctx.log.error(
            { err: safeError(error), outcome: outcome.kind },
            'settling failed; released the message instead',
          );
        } catch (releaseError) {
          ctx.log.error(
            { err: safeError(error), releaseError: safeError(releaseError), outcome: outcome.kind },
            'settling failed and the message could not be given back; the broker redelivers it when its lock or connection goes',
          );
        }
        return undefined;
      }
    }
    this.#record(ctx, outcome);
    return outcome;
  }

  #record(ctx: DeliveryContext, outcome: Outcome): void {
    this.options.telemetry?.record(ctx, outcome);
    const log = outcome.kind === 'completed' ? this.options.logger : ctx.log;
    switch (outcome.kind) {
      case 'completed':
        this.counters.completed++;
        // Checked on the endpoint logger so that the hot path never builds a child logger.
        if (log.isLevelEnabled('debug')) ctx.log.debug({ outcome: 'completed' }, 'completed');
        return;
      case 'skipped':
        this.counters.skipped++;
        this.counters.skippedByReason[outcome.reason] = (this.counters.skippedByReason[outcome.reason] ?? 0) + 1;
        if (outcome.reason === 'duplicate') log.debug({ outcome: 'skipped', reason: outcome.reason }, 'skipped');
        else
          log.info(
            { outcome: 'skipped', reason: outcome.reason, detail: outcome.detail, ...outcome.ordering },
            'skipped',
          );
        return;
      case 'retry':
        this.counters.retried++;
        log.warn({ outcome: 'retry', attempt: outcome.attempt, delayMs: outcome.delayMs }, 'released for redelivery');
        return;
      case 'deadLetter': {
        this.counters.deadLettered++;
        const { fault } = outcome;
        const fields = {
          outcome: 'deadLetter',
          reason: fault.reason,
          description: fault.description,
          attempts: fault.attempts,
        };
        if (BadInputReasons.has(fault.reason)) {
          log.warn(fields, 'dead-lettered bad input');
          this.options.onBadInput?.(fault, ctx.delivery).catch((error: unknown) => {
            log.warn({ err: safeError(error) }, 'could not send the rejection notice');
          });
        } else log.error({ ...fields, errorName: fault.errorName, errorMessage: fault.errorMessage }, 'dead-lettered');
        return;
      }
      case 'released':
        this.counters.released++;
        if (outcome.reason === 'dependency') {
          this.counters.dependencyFailures++;
          log.warn(
            {
              outcome: 'released',
              reason: outcome.reason,
              dependency: outcome.dependency,
              err: safeError(outcome.error),
              retryInMs: outcome.delayMs,
            },
            'a dependency failed; released without spending an attempt',
          );
        } else log.info({ outcome: 'released', reason: outcome.reason }, 'released');
        return;
    }
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
    await this.#consumer?.pause();
    this.options.limiter.cancelWaiting();
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
