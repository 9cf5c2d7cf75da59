import type { Consumer, DeliveryCallback } from '../../src/transport/index.js';
import { MemoryDelivery } from './memory-delivery.js';
import type { Lock, MemoryQueue } from './memory-queue.js';

/**
 * One consumer of a memory queue, owned by one transport (connection). Holds at most `prefetch`
 * unsettled deliveries. Nothing but `close` (or its transport's) stops it: the broker lives in the
 * process, and a queue, once made, is never deleted. So it never reports a status.
 */
export class MemoryConsumer implements Consumer {
  #inFlight = 0;
  #paused = false;
  #closed = false;
  #drained: (() => void) | undefined;

  constructor(
    private readonly queue: MemoryQueue,
    private readonly callback: DeliveryCallback,
    private readonly prefetch: number,
    private readonly onClosed: (consumer: MemoryConsumer) => void,
  ) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  canTake(): boolean {
    return !this.#paused && !this.#closed && this.#inFlight < this.prefetch;
  }

  deliver(queue: MemoryQueue, lock: Lock): void {
    this.#inFlight++;
    const delivery = new MemoryDelivery(queue, lock);
    try {
      this.callback(delivery);
    } catch {
      // A callback must not throw; if it does, the message goes back rather than being lost.
      queue.abandon(lock);
    }
  }

  settled(_lock: Lock): void {
    this.#inFlight--;
    if (this.#inFlight === 0) this.#drained?.();
  }

  async pause(): Promise<void> {
    this.#paused = true;
  }

  async resume(): Promise<void> {
    if (this.#closed) return;
    this.#paused = false;
    this.queue.schedulePump();
  }

  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const drainTimeoutMs = options.drainTimeoutMs ?? 0;
    if (this.#inFlight > 0 && drainTimeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainTimeoutMs);
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#drained = undefined;
    }
    this.abandonAll();
    this.queue.removeConsumer(this);
    this.onClosed(this);
  }

  /** Returns every unsettled delivery to the queue, as a broker does for a dead connection. */
  abandonAll(): void {
    this.#closed = true;
    for (const lock of this.queue.locksOf(this)) this.queue.abandon(lock);
  }
}
