import { SluiceHeader } from '../../src/transport-core/index.js';
import type { KafkaConsumerDeps } from './kafka-consumer.js';
import type { KafkaDelivery } from './kafka-delivery.js';
import { isMessageTooLarge, KafkaHeader } from './kafka-header.js';

/**
 * Kafka's "copy durably to an address" for the settlement kernel: a record written with acks=all to
 * the endpoint's retry topic (its due time in a header: Kafka's way to delay) or dead-letter topic,
 * naming the record it copies.
 */
export class SettlementCopies {
  constructor(private readonly deps: Pick<KafkaConsumerDeps, 'producer' | 'topics' | 'clock' | 'logger'>) {}

  /**
   * The retry-topic copy; false when it does not fit the retry topic (the caller then keeps the
   * record for an in-process redelivery).
   */
  async retry(delivery: KafkaDelivery, headers: Record<string, string>, delayMs: number): Promise<boolean> {
    const record: Record<string, string> = { ...headers };
    record[KafkaHeader.dueAt] = String(this.deps.clock.now() + Math.max(0, delayMs));
    record[KafkaHeader.source] = delivery.deliveryId;
    if (await this.#write(this.deps.topics.retry, delivery, record)) return true;
    this.deps.logger.warn(
      { deliveryId: delivery.deliveryId, bytes: delivery.body.length, topic: this.deps.topics.retry, delayMs },
      'retry copy too large for the retry topic; redelivering the record in process after the delay instead',
    );
    return false;
  }

  /**
   * The dead-letter copy. One that does not fit the dead-letter topic becomes a reference: rather
   * than hold the partition's commits forever, the fault without the body, and where the body stays
   * (the source record, kept for its topic's retention; redrive reads it there).
   */
  async deadLetter(delivery: KafkaDelivery, headers: Record<string, string>): Promise<void> {
    headers[SluiceHeader.deliveryCount] = String(delivery.deliveryCount);
    headers[KafkaHeader.source] = delivery.deliveryId;
    const topic = this.deps.topics.deadLetter;
    if (await this.#write(topic, delivery, headers)) return;
    headers[KafkaHeader.bodyOmitted] =
      `${delivery.body.length} bytes did not fit ${topic} (max.message.bytes); the body stays at ${delivery.deliveryId}`;
    this.deps.logger.warn(
      { deliveryId: delivery.deliveryId, bytes: delivery.body.length, topic },
      'dead-letter copy too large for the dead-letter topic; dead-lettered a reference to the record instead',
    );
    await this.deps.producer.send({
      topic,
      acks: -1,
      messages: [{ key: delivery.key, value: Buffer.alloc(0), headers }],
    });
  }

  /** Writes the record with acks=all; false when it is larger than the topic accepts. */
  async #write(topic: string, delivery: KafkaDelivery, headers: Record<string, string>): Promise<boolean> {
    try {
      await this.deps.producer.send({
        topic,
        acks: -1,
        messages: [{ key: delivery.key, value: delivery.body, headers }],
      });
      return true;
    } catch (error) {
      if (!isMessageTooLarge(error)) throw error;
      return false;
    }
  }
}
