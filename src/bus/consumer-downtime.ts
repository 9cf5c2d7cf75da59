import type { Clock } from '../internal/clock.js';
import { describeError } from '../telemetry/logger.js';
import type { ConsumerChange } from '../telemetry/events.js';
import { iso } from '../health/consumer-view.js';

/**
 * The `consumer.down` / `consumer.up` bus events of one endpoint's consumer, and how long it has
 * been down: down when it stopped consuming (reconnecting, or stopped on its own), up when it
 * consumes again.
 */
export class ConsumerDowntime {
  /** When the consumer stopped consuming (for `consumer.up`'s `downSince`). */
  #downSince: number | undefined;

  constructor(
    private readonly options: {
      readonly endpoint: string;
      readonly clock: Clock;
      readonly emit?: ((event: 'consumer.down' | 'consumer.up', change: ConsumerChange) => void) | undefined;
    },
  ) {}

  down(error: Error): void {
    this.#downSince = this.options.clock.now();
    this.options.emit?.('consumer.down', {
      endpoint: this.options.endpoint,
      at: iso(this.#downSince),
      reason: describeError(error),
    });
  }

  up(): void {
    const since = this.#downSince;
    this.#downSince = undefined;
    this.options.emit?.('consumer.up', {
      endpoint: this.options.endpoint,
      at: iso(this.options.clock.now()),
      ...(since !== undefined ? { downSince: iso(since) } : {}),
    });
  }

  downMs(): number | undefined {
    return this.#downSince === undefined ? undefined : this.options.clock.now() - this.#downSince;
  }
}
