import type { Logger } from 'pino';
import type { Clock } from '../internal/clock.js';
import { describeError, safeError } from '../telemetry/logger.js';
import type { ConsumerChange } from '../telemetry/events.js';
import type { Consumer, ConsumerStatus } from '../transport-core/transport.js';
import { type ConsumerRestartConfig, consumerRestartDelayMs } from './consumer-restart-config.js';
import { ConsumerDowntime } from './consumer-downtime.js';
import { type ConsumerState, type ConsumerView, iso } from '../health/consumer-view.js';
import { consumeWithin } from './consume-within.js';

// The view it gives (`view()`) is the health's vocabulary, declared in src/health (ranked below the bus).
export type { ConsumerState, ConsumerView } from '../health/consumer-view.js';

export interface ConsumerSupervisorOptions {
  readonly endpoint: string;
  /** Makes a consumer of the endpoint's address (`transport.consume`). */
  readonly consume: (options: { paused: boolean; onStatus: (status: ConsumerStatus) => void }) => Promise<Consumer>;
  /** Runs before every restart attempt: declares the endpoint's topology again (idempotent). */
  readonly prepare: () => Promise<void>;
  readonly config: ConsumerRestartConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  /** `consumer.down` / `consumer.up` bus events. */
  readonly emit?: (event: 'consumer.down' | 'consumer.up', change: ConsumerChange) => void;
  /** 0 ≤ r < 1, for the backoff's jitter; `Math.random` by default. */
  readonly random?: () => number;
}

/** How long a consumer that stopped on its own may keep its handed-out deliveries to settle them. */
const RETIRED_DRAIN_MS = 30_000;

/** One consumer the supervisor made, and what it reported before `consume` resolved. */
interface Lease {
  consumer: Consumer | undefined;
  stoppedEarly: Error | undefined;
}

/**
 * Keeps one endpoint's consumer alive. The endpoint talks to it as to a {@link Consumer}; behind it
 * sits the transport's consumer of the moment. When that consumer reports `stopped` (it will never
 * deliver again by itself), the supervisor closes it (its handed-out deliveries may still settle,
 * up to 30 s) and makes a new one: it declares the topology again and consumes, with capped
 * exponential backoff between attempts and every attempt bounded by a timeout, until one succeeds
 * or the endpoint stops. A consumer made while the endpoint is paused (kill switch tripped,
 * stopping) starts paused. `reconnecting` (the broker client restores the consumer itself) is shown,
 * not acted on. While not `consuming`, {@link view} says since when and why, and readiness fails.
 *
 * Used from one event loop. `close` always returns: it cancels a pending attempt and closes what an
 * attempt still in progress makes when it arrives.
 */
export class ConsumerSupervisor implements Consumer {
  #state: ConsumerState = 'starting';
  #lease: Lease | undefined;
  readonly #retired = new Set<Consumer>();
  #paused = false;
  #since: number;
  #reason: Error | undefined;
  #failedAttempts = 0;
  #lastAttemptError: unknown;
  #nextAttemptAt: number | undefined;
  #restarts = 0;
  #cancelTimer: (() => void) | undefined;
  /** `consumer.down` / `consumer.up`, and since when it is down. */
  readonly #downtime: ConsumerDowntime;

  constructor(private readonly options: ConsumerSupervisorOptions) {
    this.#since = options.clock.now();
    this.#downtime = new ConsumerDowntime(options);
  }

  /** Deliveries handed out and not yet settled, by the current consumer and those being retired. */
  get inFlight(): number {
    let n = this.#lease?.consumer?.inFlight ?? 0;
    for (const c of this.#retired) n += c.inFlight;
    return n;
  }

  /** Makes the first consumer; throws what `consume` throws (a start-up failure is the caller's). */
  async start(): Promise<void> {
    const lease = this.#newLease();
    const consumer = await this.options.consume({ paused: false, onStatus: (s) => this.#onStatus(lease, s) });
    lease.consumer = consumer;
    if (this.#state === 'closed') {
      await consumer.close({ drainTimeoutMs: 0 });
      return;
    }
    this.#enter('consuming');
    if (lease.stoppedEarly) this.#stopped(lease, lease.stoppedEarly);
  }

  view(): ConsumerView {
    const restarting = this.#state === 'restarting';
    return {
      state: this.#state,
      paused: this.#paused,
      since: iso(this.#since),
      ...(this.#reason && (restarting || this.#state === 'reconnecting')
        ? { reason: describeError(this.#reason) }
        : {}),
      ...(restarting ? { failedAttempts: this.#failedAttempts } : {}),
      ...(restarting && this.#lastAttemptError !== undefined
        ? { lastAttemptError: describeError(this.#lastAttemptError) }
        : {}),
      ...(restarting && this.#nextAttemptAt !== undefined ? { nextAttemptAt: iso(this.#nextAttemptAt) } : {}),
      restarts: this.#restarts,
    };
  }

  /** Pauses the current consumer, and every consumer made later until {@link resume}. */
  async pause(): Promise<void> {
    this.#paused = true;
    await this.#apply((c) => c.pause());
  }

  async resume(): Promise<void> {
    this.#paused = false;
    await this.#apply((c) => c.resume());
  }

  /** Stops for good: no more restarts; closes the current consumer and those being retired. */
  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (this.#state === 'closed') return;
    this.#enter('closed');
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    const consumers = [...this.#retired];
    const current = this.#lease?.consumer;
    if (current) consumers.push(current);
    this.#lease = undefined;
    this.#retired.clear();
    await Promise.all(
      consumers.map((c) =>
        c.close(options).catch((error: unknown) => {
          this.options.logger.warn({ err: safeError(error) }, 'closing the consumer failed');
        }),
      ),
    );
  }

  async #apply(operation: (consumer: Consumer) => Promise<void>): Promise<void> {
    const lease = this.#lease;
    const consumer = lease?.consumer;
    if (!consumer || this.#state === 'closed') return;
    try {
      await operation(consumer);
    } catch (error) {
      // A consumer that died meanwhile is being replaced; the new one gets the wanted state.
      if (this.#lease === lease && this.#state !== 'restarting') throw error;
    }
  }

  #newLease(): Lease {
    const lease: Lease = { consumer: undefined, stoppedEarly: undefined };
    this.#lease = lease;
    return lease;
  }

  #onStatus(lease: Lease, status: ConsumerStatus): void {
    if (this.#state === 'closed' || lease !== this.#lease) return;
    if (lease.consumer === undefined) {
      // Reported while `consume` is still running: acted on once it returns.
      if (status.kind === 'stopped') lease.stoppedEarly ??= status.error;
      return;
    }
    switch (status.kind) {
      case 'stopped':
        this.#stopped(lease, status.error);
        return;
      case 'reconnecting':
        if (this.#state === 'consuming') {
          this.#enter('reconnecting');
          this.#reason = status.error;
          this.#downtime.down(status.error);
          this.options.logger.warn(
            { err: safeError(status.error) },
            'consumer cannot receive; its broker client is reconnecting it',
          );
        } else if (this.#state === 'reconnecting') this.#reason = status.error;
        return;
      case 'receiving':
        if (this.#state !== 'reconnecting') return;
        this.options.logger.info({ downMs: this.#downtime.downMs() }, 'consumer receiving again');
        this.#enter('consuming');
        this.#downtime.up();
        return;
    }
  }

  #stopped(lease: Lease, error: Error): void {
    const consumer = lease.consumer;
    this.#lease = undefined;
    if (consumer) this.#retire(consumer);
    const wasDown = this.#state === 'reconnecting';
    this.#enter('restarting');
    this.#reason = error;
    this.#failedAttempts = 0;
    this.#lastAttemptError = undefined;
    const delayMs = this.#schedule();
    this.options.logger.error(
      { err: safeError(error), restartInMs: delayMs },
      'consumer stopped on its own; making a new one',
    );
    // Emitted once the state says so: a listener that reads the health view sees it restarting.
    if (!wasDown) this.#downtime.down(error);
  }

  /** Closes a consumer that stopped on its own, leaving its deliveries time to settle. */
  #retire(consumer: Consumer): void {
    this.#retired.add(consumer);
    consumer
      .close({ drainTimeoutMs: RETIRED_DRAIN_MS })
      .catch((error: unknown) => {
        this.options.logger.warn({ err: safeError(error) }, 'closing the stopped consumer failed');
      })
      .finally(() => this.#retired.delete(consumer));
  }

  #schedule(): number {
    const { config, clock } = this.options;
    const delayMs = consumerRestartDelayMs(this.#failedAttempts + 1, config, (this.options.random ?? Math.random)());
    this.#nextAttemptAt = clock.now() + delayMs;
    this.#cancelTimer = clock.setTimer(() => {
      this.#cancelTimer = undefined;
      void this.#attempt();
    }, delayMs);
    return delayMs;
  }

  async #attempt(): Promise<void> {
    if (this.#state !== 'restarting') return;
    this.#nextAttemptAt = undefined;
    const attempt = this.#failedAttempts + 1;
    const lease = this.#newLease();
    const paused = this.#paused;
    let consumer: Consumer;
    try {
      consumer = await consumeWithin(
        this.options.clock,
        this.options.config.attemptTimeoutMs,
        async () => {
          await this.options.prepare();
          return this.options.consume({ paused, onStatus: (s) => this.#onStatus(lease, s) });
        },
        () => {
          if (this.#lease === lease) this.#lease = undefined;
        },
      );
    } catch (error) {
      if (this.#state !== 'restarting' || this.#lease !== lease) return;
      this.#lease = undefined;
      this.#failed(attempt, error);
      return;
    }
    if (this.#state !== 'restarting' || this.#lease !== lease) {
      // Closed (or superseded) while the attempt ran.
      await consumer.close({ drainTimeoutMs: 0 }).catch(() => {});
      return;
    }
    lease.consumer = consumer;
    if (lease.stoppedEarly) {
      this.#lease = undefined;
      this.#retire(consumer);
      this.#failed(attempt, lease.stoppedEarly);
      return;
    }
    this.#restarts++;
    this.options.logger.warn({ attempts: attempt, downMs: this.#downtime.downMs() }, 'consumer restarted');
    this.#enter('consuming');
    this.#downtime.up();
    // The endpoint was paused or resumed while the attempt ran.
    if (this.#paused !== paused) {
      await this.#apply((c) => (this.#paused ? c.pause() : c.resume())).catch((error: unknown) => {
        this.options.logger.warn({ err: safeError(error) }, 'could not bring the new consumer to its paused state');
      });
    }
  }

  #failed(attempt: number, error: unknown): void {
    this.#failedAttempts = attempt;
    this.#lastAttemptError = error;
    const retryInMs = this.#schedule();
    this.options.logger.warn(
      { err: safeError(error), attempt, retryInMs, stoppedSince: iso(this.#since) },
      'could not make a new consumer; trying again',
    );
  }

  #enter(state: ConsumerState): void {
    if (state !== this.#state) this.#since = this.options.clock.now();
    this.#state = state;
    if (state === 'consuming' || state === 'closed') {
      this.#reason = undefined;
      this.#failedAttempts = 0;
      this.#lastAttemptError = undefined;
      this.#nextAttemptAt = undefined;
    }
  }
}
