import type { FaultDetails, TransportCapabilities } from '../../src/transport-core/index.js';
import { ACKNOWLEDGED, SettlingDelivery } from '../../src/transport-core/index.js';
import type { Lock, MemoryQueue } from './memory-queue.js';

/**
 * A delivery from a memory queue. The queue has every primitive natively: complete, release in
 * place (at once or after a delay, headers merged) and its own dead-letter queue, all under the lock.
 */
export class MemoryDelivery extends SettlingDelivery {
  /**
   * As delivered: the stored message's count and headers change when it is delivered again (after
   * this lock expired) or released, and this delivery must not see the next one's.
   */
  readonly deliveryCount: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    private readonly queue: MemoryQueue,
    private readonly lock: Lock,
    protected readonly capabilities: TransportCapabilities,
  ) {
    super();
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

  protected acknowledge(): Promise<void> {
    this.queue.complete(this.lock);
    return ACKNOWLEDGED;
  }

  protected giveBack(headers: Readonly<Record<string, string>> | undefined, delayMs: number): Promise<void> {
    this.queue.release(this.lock, delayMs, headers);
    return ACKNOWLEDGED;
  }

  protected copy(): Promise<undefined> {
    return Promise.reject(new Error('the memory queue never copies: it releases and dead-letters in place'));
  }

  protected returnUnchanged(): Promise<void> {
    this.queue.abandon(this.lock);
    return ACKNOWLEDGED;
  }

  protected override nativeDeadLetter(fault: FaultDetails): Promise<void> {
    this.queue.deadLetter(this.lock, fault);
    return ACKNOWLEDGED;
  }

  protected override async extendLock(): Promise<void> {
    this.queue.renew(this.lock);
  }
}
