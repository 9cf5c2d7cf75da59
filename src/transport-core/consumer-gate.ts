import type { Logger } from 'pino';
import { TransportError } from '../errors/sluice-error.js';
import type { Clock } from '../internal/clock.js';
import type { Delivery } from './delivery.js';
import { errorText } from './failure.js';
import type { ConsumeOptions, DeliveryCallback } from './transport.js';

/** The consumer's own options (prefetch, paused, onStatus) and what the gate needs besides. */
export interface ConsumerGateOptions extends ConsumeOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Names the consumer in the log line of a `stopped` nobody listens for. */
  readonly what: string;
  /**
   * Where the count of unsettled deliveries lives when the broker keeps it (an AMQP channel's
   * unacked tags); the adapter then calls {@link ConsumerGate.idle} when it drops to zero.
   */
  readonly inFlight?: () => number;
}

/**
 * What every consumer keeps the same way, whatever its broker: the prefetch (deliveries handed out
 * and not settled), the paused, closed and stopped flags, the drain on close, and the one report of
 * a consumer that stopped on its own. The adapter counts with {@link handedOut} and {@link settled},
 * asks {@link canTake} before handing out, and calls {@link drain} from `close`.
 */
export class ConsumerGate {
  #inFlight = 0;
  #paused: boolean;
  #closed = false;
  #stoppedBy: Error | undefined;
  #idle: (() => void) | undefined;

  constructor(private readonly options: ConsumerGateOptions) {
    this.#paused = options.paused ?? false;
  }

  get prefetch(): number {
    return this.options.prefetch;
  }
  get inFlight(): number {
    return this.options.inFlight ? this.options.inFlight() : this.#inFlight;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** Stopped on its own (reported `stopped`): never hands out again. */
  get stopped(): boolean {
    return this.#stoppedBy !== undefined;
  }
  /** Hands out nothing now: paused, closed or stopped. */
  get held(): boolean {
    return this.#paused || this.#closed || this.#stoppedBy !== undefined;
  }

  /** Whether one more delivery may be handed out now. */
  canTake(): boolean {
    return !this.held && this.inFlight < this.options.prefetch;
  }

  handedOut(): void {
    this.#inFlight++;
  }

  /**
   * Counts a delivery as handed out (unless the broker counts) and gives it to the callback. A
   * callback must not throw; when it does, the log says so and `giveBack` returns the message to
   * the broker rather than losing it.
   */
  handOut(delivery: Delivery, callback: DeliveryCallback, giveBack: () => void): void {
    if (!this.options.inFlight) this.#inFlight++;
    try {
      callback(delivery);
    } catch (error) {
      this.options.logger.error(
        { err: error },
        `${this.options.what}: the delivery callback threw; its message goes back`,
      );
      giveBack();
    }
  }

  /** One handed-out delivery no longer holds a slot (settled, lost or given back). */
  settled(count = 1): void {
    this.#inFlight -= count;
    if (this.#inFlight <= 0) this.idle();
  }

  /** Nothing handed out is unsettled any more: ends a drain. */
  idle(): void {
    this.#idle?.();
  }

  /** Sets the paused flag; false when it was already so (the call changes nothing). */
  pause(): boolean {
    if (this.#paused) return false;
    this.#paused = true;
    return true;
  }

  /** Clears the paused flag; false when nothing changes (not paused, or closed). */
  resume(): boolean {
    if (!this.#paused || this.#closed) return false;
    this.#paused = false;
    return true;
  }

  /** Marks the consumer closed; false when it already was (close is idempotent). */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /**
   * Waits until nothing handed out is unsettled or `drainTimeoutMs` passed (0: not at all); what
   * is still unsettled then is the adapter's to give back.
   */
  async drain(drainTimeoutMs = 0): Promise<void> {
    if (this.inFlight <= 0 || drainTimeoutMs <= 0) return;
    await new Promise<void>((resolve) => {
      const cancel = this.options.clock.setTimer(resolve, drainTimeoutMs);
      this.#idle = () => {
        cancel();
        resolve();
      };
    });
    this.#idle = undefined;
  }

  /** Why it stopped on its own (the error reported as `stopped`), if it did. */
  get stoppedBy(): Error | undefined {
    return this.#stoppedBy;
  }

  /**
   * The consumer stopped on its own and will not recover: says so once, as a `TransportError`
   * "`reason`: <the cause's name and message>", to `onStatus`, or in the log when nobody listens.
   * Never after `close()`. False when it was not reported (closed, or already).
   */
  stop(reason: string, cause?: unknown): boolean {
    if (this.#closed || this.#stoppedBy) return false;
    const detail = cause === undefined ? '' : `: ${errorText(cause, true)}`;
    const error = new TransportError(`${reason}${detail}`, { cause });
    this.#stoppedBy = error;
    if (this.options.onStatus) this.options.onStatus({ kind: 'stopped', error });
    else this.options.logger.error({ err: error }, `${this.options.what} stopped; nothing consumes it`);
    return true;
  }
}
