import type { Clock } from '../../src/transport-core/index.js';
import { MemoryQueue } from './memory-queue.js';

export interface MemoryBrokerOptions {
  /** How long a delivery stays locked before it is redelivered. Default 30 s. */
  lockTimeoutMs?: number;
  clock: Clock;
}

/**
 * The in-process broker behind the memory transport: queues by address and publish bindings by
 * message type. Several transports (connections) may share one broker, which is how tests model
 * competing consumers and a consumer that dies. Nothing survives the process.
 */
export class MemoryBroker {
  readonly #queues = new Map<string, MemoryQueue>();
  readonly #bindings = new Map<string, Set<string>>();

  constructor(private readonly options: MemoryBrokerOptions) {}

  /** The queue at `address`, created on first use so that a send before any consumer is kept. */
  queue(address: string): MemoryQueue {
    let queue = this.#queues.get(address);
    if (!queue) {
      queue = new MemoryQueue(address, this.options.clock, this.options.lockTimeoutMs ?? 30_000);
      this.#queues.set(address, queue);
    }
    return queue;
  }

  bind(messageType: string, address: string): void {
    let bound = this.#bindings.get(messageType);
    if (!bound) {
      bound = new Set();
      this.#bindings.set(messageType, bound);
    }
    bound.add(address);
  }

  /** Addresses a publish of `messageType` reaches (none: the publish is dropped, as pub/sub does). */
  subscribers(messageType: string): ReadonlySet<string> {
    return this.#bindings.get(messageType) ?? new Set();
  }

  dispose(): void {
    for (const queue of this.#queues.values()) queue.dispose();
  }
}
