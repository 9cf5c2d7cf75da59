import type { FaultDetails } from '../errors/fault.js';
import { AlreadySettledError, LockLostError, TransportError } from '../errors/sluice-error.js';
import type { Delivery, ReleaseOptions } from './delivery.js';
import { transportFailure } from './failure.js';
import { deadLetterHeaders, SluiceHeader } from './headers.js';
import type { TransportCapabilities } from './transport.js';

/**
 * Where one delivery stands (see the rule on {@link Delivery}):
 * - `open`: held under its lock, no settlement under way; a settlement may start;
 * - `settling`: one settlement is under way; any other call rejects with `AlreadySettledError`;
 * - `settled`: a settlement succeeded; any later one rejects with `AlreadySettledError`;
 * - `lost`: the broker no longer holds the message for this delivery (lock expired, channel,
 *   connection or partition gone, handed back on close, or a settlement refused for that reason);
 *   every later call rejects with `LockLostError`, and the broker redelivers.
 */
export type SettlementState = 'open' | 'settling' | 'settled' | 'lost';

/** Where a copy goes: back to the endpoint no sooner than `delayMs`, or to its dead letters. */
export type CopyTarget = { readonly kind: 'release'; readonly delayMs: number } | { readonly kind: 'deadLetter' };

/** A copy an adapter did not write, keeping the original itself for a redelivery (Kafka: too large). */
export const KEPT_FOR_REDELIVERY = 'kept-for-redelivery';

/**
 * The settled promise an adapter's synchronous `acknowledge` returns: `complete` then takes no extra
 * promise turn (the memory and Kafka hot path).
 */
export const ACKNOWLEDGED: Promise<void> = Promise.resolve();

/**
 * The settlement kernel every transport's delivery extends: settle once, the one rule for a failed
 * settlement, and copy-then-remove chosen by the transport's capabilities. An adapter gives only
 * the primitives its broker has:
 * - {@link acknowledge}: remove the original (ack, offset settled, complete);
 * - {@link giveBack}: return the original to the broker now (or, with `nativeDelay`, after a delay),
 *   headers merged, when the broker can do that in place; `undefined` when it cannot for these
 *   options, and the kernel copies instead;
 * - {@link copy}: write a copy durably (to the endpoint again, through a delay address without
 *   `nativeDelay`; or to the dead-letter address); resolves once the broker has it;
 * - {@link nativeDeadLetter}, called only with `capabilities.nativeDeadLetter`;
 * - {@link lockGone}: whether the lock is already known lost (a closed channel, a revoked partition).
 *
 * Choices, by the capabilities: `deadLetter` → native with `nativeDeadLetter`, else a copy to the
 * dead-letter address, then `acknowledge`. `release` → `giveBack` (in place) when the broker counts
 * the redelivery itself (`deliveryCount: 'native'`, no delay) or delays natively (`nativeDelay`)
 * and the adapter can for these options; else a copy carrying the merged headers and
 * `sluice-delivery-count`, then `acknowledge`. A plain `release()` (no delay) whose
 * copy failed with the lock still held gives the original back untouched: the one way out that
 * never leaves a delivery held for good (a Kafka offset no one settles, an unacked AMQP tag).
 */
export abstract class SettlingDelivery implements Delivery {
  #state: SettlementState = 'open';

  abstract readonly deliveryId: string;
  abstract readonly body: Buffer;
  abstract readonly headers: Readonly<Record<string, string>>;
  abstract readonly deliveryCount: number;
  abstract readonly partitionKey: string | undefined;
  abstract readonly address: string;

  protected abstract readonly capabilities: TransportCapabilities;
  protected abstract acknowledge(): Promise<void>;
  protected abstract giveBack(
    headers: Readonly<Record<string, string>> | undefined,
    delayMs: number,
  ): Promise<void> | undefined;
  protected abstract copy(
    target: CopyTarget,
    headers: Record<string, string>,
  ): Promise<typeof KEPT_FOR_REDELIVERY | undefined>;
  /** Returns the original untouched and now, as a consumer that goes away does (never a copy). */
  protected abstract returnUnchanged(): Promise<void>;
  protected nativeDeadLetter(_fault: FaultDetails, _headers: Record<string, string>): Promise<void> {
    return Promise.reject(new TransportError(`${this.address}: the broker has no dead-letter queue of its own`));
  }
  /** The lock is known lost without asking the broker. */
  protected lockGone(): boolean {
    return false;
  }
  /** The headers a copy starts from: the received ones less what only the broker sets. */
  protected copyHeaders(): Record<string, string> {
    return { ...this.headers };
  }

  /** Told once, when the delivery stops holding its slot: settled, or lost. */
  protected ended(_state: 'settled' | 'lost'): void {}

  #end(state: 'settled' | 'lost'): void {
    if (this.#state === 'settled' || this.#state === 'lost') return;
    this.#state = state;
    this.ended(state);
  }

  get settlement(): SettlementState {
    if (this.#state !== 'settled' && this.#state !== 'lost' && this.lockGone()) this.#end('lost');
    return this.#state;
  }

  /**
   * The broker took the message back (handed back on close, the connection gone) while no
   * settlement was under way; false otherwise (a settlement under way decides by its own result).
   */
  markLost(): boolean {
    if (this.#state !== 'open') return false;
    this.#end('lost');
    return true;
  }

  protected lost(why = 'its lock was lost'): LockLostError {
    return new LockLostError(`delivery ${this.deliveryId}: ${why}; the broker redelivers it`);
  }

  #begin(): void {
    const state = this.settlement;
    if (state === 'lost') throw this.lost();
    if (state !== 'open') throw new AlreadySettledError(this.deliveryId);
    this.#state = 'settling';
  }

  /** The one rule: a lost lock is final, any other failure leaves the delivery open. */
  #failed(error: unknown): Error {
    if (error instanceof LockLostError) {
      this.#end('lost');
      return error;
    }
    if (this.#state === 'settling') {
      if (this.lockGone()) this.#end('lost');
      else this.#state = 'open';
    }
    if (this.#state === 'lost') return this.lost();
    return transportFailure(`settling ${this.deliveryId}`, error);
  }

  #done(): void {
    if (this.#state === 'settling') this.#end('settled');
  }

  async #run(operation: () => Promise<unknown>): Promise<void> {
    this.#begin();
    try {
      await operation();
    } catch (error) {
      throw this.#failed(error);
    }
    this.#done();
  }

  /** Not async (every message completes): the same checks, a failure returned as a rejection. */
  complete(): Promise<void> {
    let acknowledged: Promise<void>;
    try {
      this.#begin();
      acknowledged = this.acknowledge();
    } catch (error) {
      return Promise.reject(this.#failed(error));
    }
    if (acknowledged === ACKNOWLEDGED) {
      this.#done();
      return ACKNOWLEDGED;
    }
    return acknowledged.then(
      () => this.#done(),
      (error: unknown) => {
        throw this.#failed(error);
      },
    );
  }

  release(options: ReleaseOptions = {}): Promise<void> {
    const delayMs = Math.max(0, options.delayMs ?? 0);
    const headers = options.headers && Object.keys(options.headers).length > 0 ? options.headers : undefined;
    return this.#run(async () => {
      try {
        await this.#release(delayMs, headers);
      } catch (error) {
        // A plain release is the way out that never leaves a delivery held for good.
        if (error instanceof LockLostError || this.lockGone() || delayMs > 0 || headers) throw error;
        await this.returnUnchanged();
      }
    });
  }

  async #release(delayMs: number, headers: Readonly<Record<string, string>> | undefined): Promise<void> {
    // In place only where the broker counts the redelivery itself, or delays natively.
    const { deliveryCount, nativeDelay } = this.capabilities;
    const inPlace =
      (delayMs === 0 && deliveryCount === 'native') || (delayMs > 0 && nativeDelay)
        ? this.giveBack(headers, delayMs)
        : undefined;
    if (inPlace !== undefined) return inPlace;
    const next = { ...this.copyHeaders(), ...headers, [SluiceHeader.deliveryCount]: String(this.deliveryCount) };
    if ((await this.copy({ kind: 'release', delayMs }, next)) === KEPT_FOR_REDELIVERY) return;
    await this.acknowledge();
  }

  deadLetter(fault: FaultDetails): Promise<void> {
    return this.#run(async () => {
      const headers = deadLetterHeaders(this.copyHeaders(), fault);
      if (this.capabilities.nativeDeadLetter) return this.nativeDeadLetter(fault, headers);
      await this.copy({ kind: 'deadLetter' }, headers);
      await this.acknowledge();
    });
  }

  async renewLock(): Promise<void> {
    const state = this.settlement;
    if (state === 'lost') throw this.lost();
    if (state === 'settled') return;
    try {
      await this.extendLock();
    } catch (error) {
      if (error instanceof LockLostError) this.markLost();
      throw error;
    }
  }

  /** Extends the lock where it expires; by default the lock lasts as long as the channel. */
  protected async extendLock(): Promise<void> {}
}
