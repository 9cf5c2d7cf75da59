import type { Logger } from 'pino';
import type { DeliveryCallback } from '../../src/transport-core/index.js';
import { SluiceHeader } from '../../src/transport-core/index.js';
import type { KafkaConsumerDeps } from './kafka-consumer.js';
import type { KafkaDelivery } from './kafka-delivery.js';
import type { PartitionState } from './partition-state.js';

/** Hands a delivery to the endpoint; a callback that throws loses nothing (the record comes again). */
export function handOut(delivery: KafkaDelivery, callback: DeliveryCallback, logger: Logger): void {
  try {
    callback(delivery);
  } catch (error) {
    logger.error({ err: error }, 'delivery callback threw; the record will come again');
  }
}

/** Records kept in process for a redelivery (Kafka's "return" and its fallback for a too-large copy). */
export class HeldRecords {
  readonly #held = new Set<() => void>();

  constructor(
    private readonly deps: Pick<KafkaConsumerDeps, 'clock' | 'callback' | 'logger'>,
    private readonly closing: () => boolean,
  ) {}

  /** Cancels every held redelivery (the consumer lets go of its partitions). */
  dropAll(): void {
    for (const cancel of this.#held) cancel();
    this.#held.clear();
  }

  /**
   * Keeps a record (its offset unsettled, its prefetch slot taken) and hands it out again after the
   * delay, counted once more: a retry copy that does not fit the retry topic, or a record returned
   * unchanged. Never an offset left unsettled for good; a crash or a rebalance meanwhile loses
   * nothing: the record is read again from the committed offset.
   */
  redeliverLater(delivery: KafkaDelivery, headers: Record<string, string>, delayMs: number): void {
    const state = delivery.lease as PartitionState;
    headers[SluiceHeader.deliveryCount] = String(delivery.deliveryCount);
    const cancel = this.deps.clock.setTimer(
      () => {
        this.#held.delete(cancel);
        if (state.revoked || this.closing()) return;
        handOut(delivery.again(headers), this.deps.callback, this.deps.logger);
      },
      Math.max(0, delayMs),
    );
    this.#held.add(cancel);
  }
}
