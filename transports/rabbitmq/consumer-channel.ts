import type { Channel, ConsumeMessage } from 'amqplib';
import { createDeferred, type Deferred, LockLostError } from '../../src/transport-core/index.js';

/**
 * One consumer's AMQP channel and the deliveries it holds. A delivery tag is only valid on the
 * channel it came from: once the channel is gone, every settlement of its deliveries fails with
 * `LockLostError` (the broker has already put them back).
 *
 * Acks are coalesced: completions within one turn of the event loop are written together when the
 * turn ends, as one `multiple` ack for the run of tags below the oldest still unsettled delivery and
 * single acks for the rest. A multiple ack never covers a delivery that is not being acked: a
 * delivery whose copy is still awaiting a confirm (release, dead-letter) stays unsettled here.
 */
export class ConsumerChannel {
  #alive = true;
  /** Handed out and not yet acked or nacked, in delivery-tag order (Map keeps insertion order). */
  readonly #unsettled = new Map<number, ConsumeMessage>();
  #acks: ConsumeMessage[] = [];
  #flush: Deferred<void> | undefined;

  constructor(
    readonly channel: Channel,
    readonly id: number,
    /** Called when `unsettled` drops to zero (for draining on close). */
    private readonly onIdle: () => void,
  ) {}

  get alive(): boolean {
    return this.#alive;
  }

  /** Deliveries handed out on this channel whose ack or nack has not been written yet. */
  get unsettled(): number {
    return this.#unsettled.size + this.#acks.length;
  }

  handedOut(message: ConsumeMessage): void {
    this.#unsettled.set(message.fields.deliveryTag, message);
  }

  assertAlive(what: string): void {
    if (!this.#alive) throw new LockLostError(`${what}: the channel it came on closed; the broker redelivers it`);
  }

  /** Acks at the end of this event-loop turn; resolves once the ack is written. */
  ack(message: ConsumeMessage): Promise<void> {
    this.assertAlive(`delivery ${message.fields.deliveryTag}`);
    this.#unsettled.delete(message.fields.deliveryTag);
    this.#acks.push(message);
    if (!this.#flush) {
      this.#flush = createDeferred<void>();
      setImmediate(() => this.#writeAcks());
    }
    return this.#flush.promise;
  }

  #writeAcks(): void {
    const flush = this.#flush;
    const acks = this.#acks;
    this.#flush = undefined;
    this.#acks = [];
    if (!flush) return;
    if (!this.#alive) {
      flush.reject(new LockLostError('the channel closed before the ack was written; the broker redelivers'));
      return;
    }
    try {
      const oldest = this.#unsettled.keys().next();
      const floor = oldest.done ? Number.POSITIVE_INFINITY : oldest.value;
      let below: ConsumeMessage | undefined;
      for (const message of acks) {
        const tag = message.fields.deliveryTag;
        if (tag < floor) {
          if (!below || tag > below.fields.deliveryTag) below = message;
        } else {
          this.channel.ack(message);
        }
      }
      if (below) this.channel.ack(below, true);
      flush.resolve();
    } catch (error) {
      flush.reject(
        new LockLostError('the channel closed before the ack was written; the broker redelivers', { cause: error }),
      );
    }
    this.#idleCheck();
  }

  /** Returns the message to its queue at once (requeue) or drops it (no requeue). */
  nack(message: ConsumeMessage, requeue: boolean): void {
    this.assertAlive(`delivery ${message.fields.deliveryTag}`);
    this.#unsettled.delete(message.fields.deliveryTag);
    try {
      this.channel.nack(message, false, requeue);
    } catch (error) {
      throw new LockLostError('the channel closed before the nack was written; the broker redelivers', {
        cause: error,
      });
    }
    this.#idleCheck();
  }

  #idleCheck(): void {
    if (this.unsettled === 0) this.onIdle();
  }

  /** The channel is gone: its deliveries are the broker's again. */
  lost(): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#unsettled.clear();
    const flush = this.#flush;
    this.#flush = undefined;
    this.#acks = [];
    flush?.reject(new LockLostError('the channel closed before the ack was written; the broker redelivers'));
    this.onIdle();
  }
}
