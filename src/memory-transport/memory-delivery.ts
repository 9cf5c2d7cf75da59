import type { Delivery, FaultDetails, ReleaseOptions } from '../../src/transport/index.js';
import { AlreadySettledError } from '../../src/transport/index.js';
import type { Lock, MemoryQueue } from './memory-queue.js';

const DONE: Promise<void> = Promise.resolve();

/** A delivery from a memory queue: settlement goes straight to the queue under the lock. */
export class MemoryDelivery implements Delivery {
  #settled = false;
  /**
   * As delivered: the stored message's count and headers change when it is delivered again (after
   * this lock expired) or released, and this delivery must not see the next one's.
   */
  readonly deliveryCount: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    private readonly queue: MemoryQueue,
    private readonly lock: Lock,
  ) {
    this.deliveryCount = lock.message.deliveryCount;
    this.headers = lock.message.headers;
  }

  get deliveryId(): string {
    return `${this.queue.address}#${this.lock.tag}`;
  }
  get body(): Buffer {
    return this.lock.message.body;
  }
  get partitionKey(): string | undefined {
    return this.lock.message.key;
  }
  get address(): string {
    return this.queue.address;
  }
  get lockedUntil(): number {
    return this.lock.lockedUntil;
  }

  #settle(): void {
    if (this.#settled) throw new AlreadySettledError(this.deliveryId);
    this.#settled = true;
  }

  /** Not async (every message completes): the same checks, a failure returned as a rejection. */
  complete(): Promise<void> {
    try {
      this.#settle();
      this.queue.complete(this.lock);
    } catch (error) {
      return Promise.reject(error);
    }
    return DONE;
  }

  async release(options: ReleaseOptions = {}): Promise<void> {
    this.#settle();
    this.queue.release(this.lock, options.delayMs ?? 0, options.headers);
  }

  async deadLetter(fault: FaultDetails): Promise<void> {
    this.#settle();
    this.queue.deadLetter(this.lock, fault);
  }

  async renewLock(): Promise<void> {
    this.queue.renew(this.lock);
  }
}
