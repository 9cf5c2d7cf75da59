import type {
  Consumer,
  ConsumerGate,
  DeliveryCallback,
  TransportCapabilities,
} from '../../src/transport-core/index.js';
import { MemoryDelivery } from './memory-delivery.js';
import type { Lock, MemoryQueue } from './memory-queue.js';

/**
 * One consumer of a memory queue, owned by one transport (connection). Holds at most `prefetch`
 * unsettled deliveries (the kernel's gate). Nothing but `close` (or its transport's) stops it: the
 * broker lives in the process, and a queue, once made, is never deleted. So it never reports a status.
 */
export class MemoryConsumer implements Consumer {
  constructor(
    private readonly queue: MemoryQueue,
    private readonly callback: DeliveryCallback,
    private readonly gate: ConsumerGate,
    private readonly capabilities: TransportCapabilities,
    private readonly onClosed: (consumer: MemoryConsumer) => void,
  ) {}

  get inFlight(): number {
    return this.gate.inFlight;
  }

  canTake(): boolean {
    return this.gate.canTake();
  }

  deliver(queue: MemoryQueue, lock: Lock): void {
    const delivery = new MemoryDelivery(queue, lock, this.capabilities);
    this.gate.handOut(delivery, this.callback, () => queue.abandon(lock));
  }

  settled(_lock: Lock): void {
    this.gate.settled();
  }

  async pause(): Promise<void> {
    this.gate.pause();
  }

  async resume(): Promise<void> {
    if (this.gate.resume()) this.queue.schedulePump();
  }

  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (!this.gate.close()) return;
    await this.gate.drain(options.drainTimeoutMs);
    this.abandonAll();
    this.queue.removeConsumer(this);
    this.onClosed(this);
  }

  /** Returns every unsettled delivery to the queue, as a broker does for a dead connection. */
  abandonAll(): void {
    this.gate.close();
    for (const lock of this.queue.locksOf(this)) this.queue.abandon(lock);
  }
}
