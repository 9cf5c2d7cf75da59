import type { ConsumeMessage } from 'amqplib';
import type { Delivery, FaultDetails, ReleaseOptions } from '../../src/transport/index.js';
import {
  AlreadySettledError,
  deadLetterHeaders,
  LockLostError,
  SluiceHeader,
  TransportError,
} from '../../src/transport/index.js';
import { copyProperties, toStringHeaders, withoutBrokerHeaders } from './amqp-headers.js';
import type { ConsumerChannel } from './consumer-channel.js';
import { describe } from './rabbitmq-connection.js';

/** Header naming a dead-letter copy for redrive selection (removed again on redrive). */
export const DEAD_LETTER_ID_HEADER = 'sluice-dead-letter-id';

/** What a delivery needs from its transport to settle by re-publishing a copy. */
export interface SettlementRoutes {
  readonly address: string;
  /** Classic queues cannot count redeliveries: every release is then a counted copy. */
  readonly nackCountsRedelivery: boolean;
  /** Publishes a copy with confirms; resolves once the broker has it. */
  publishCopy(routingKey: string, content: Buffer, options: import('amqplib').Options.Publish): Promise<void>;
  /** The delay queue for at least `delayMs` in front of the endpoint (declared if needed). */
  delayQueue(delayMs: number): Promise<string>;
  newDeadLetterId(): string;
}

/**
 * One unacked AMQP delivery. Settlement maps to AMQP as follows:
 * - complete: ack (coalesced per event-loop turn);
 * - release, no delay and no headers, quorum queue: nack with requeue (the broker counts it);
 * - any other release: a copy (merged headers, `sluice-delivery-count`) published with confirms to
 *   the endpoint queue or its delay queue, then the original acked;
 * - deadLetter: a copy with fault headers published with confirms to `<queue>.dlq`, then acked.
 * A copy is confirmed before the original is acked: a crash in between duplicates, never loses.
 */
export class RabbitmqDelivery implements Delivery {
  #settled = false;
  #headers: Record<string, string> | undefined;

  constructor(
    private readonly message: ConsumeMessage,
    private readonly channel: ConsumerChannel,
    private readonly routes: SettlementRoutes,
  ) {}

  get deliveryId(): string {
    return `${this.routes.address}#${this.channel.id}.${this.message.fields.deliveryTag}`;
  }
  get body(): Buffer {
    return this.message.content;
  }
  get headers(): Readonly<Record<string, string>> {
    this.#headers ??= toStringHeaders(this.message.properties.headers);
    return this.#headers;
  }
  get deliveryCount(): number {
    const raw = this.message.properties.headers;
    const own = raw ? Number(raw[SluiceHeader.deliveryCount] ?? 0) : 0;
    const counted = raw?.['x-delivery-count'];
    const byBroker = typeof counted === 'number' ? counted : this.message.fields.redelivered ? 1 : 0;
    return (Number.isFinite(own) && own > 0 ? own : 0) + byBroker + 1;
  }
  get partitionKey(): string | undefined {
    return undefined;
  }
  get address(): string {
    return this.routes.address;
  }

  #settle(): void {
    if (this.#settled) throw new AlreadySettledError(this.deliveryId);
    this.channel.assertAlive(`delivery ${this.deliveryId}`);
    this.#settled = true;
  }

  complete(): Promise<void> {
    try {
      this.#settle();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.channel.ack(this.message);
  }

  async release(options: ReleaseOptions = {}): Promise<void> {
    this.#settle();
    const delayMs = options.delayMs ?? 0;
    const headers = options.headers && Object.keys(options.headers).length > 0 ? options.headers : undefined;
    if (delayMs <= 0 && !headers && this.routes.nackCountsRedelivery) {
      this.channel.nack(this.message, true);
      return;
    }
    const next = {
      ...withoutBrokerHeaders(this.headers),
      ...headers,
      [SluiceHeader.deliveryCount]: String(this.deliveryCount),
    };
    await this.#copyThenAck(async () => (delayMs > 0 ? this.routes.delayQueue(delayMs) : this.routes.address), next);
  }

  async deadLetter(fault: FaultDetails): Promise<void> {
    this.#settle();
    const headers = deadLetterHeaders(withoutBrokerHeaders(this.headers), fault);
    delete headers[SluiceHeader.deliveryCount];
    headers[DEAD_LETTER_ID_HEADER] = this.routes.newDeadLetterId();
    await this.#copyThenAck(async () => `${this.routes.address}.dlq`, headers);
  }

  async #copyThenAck(target: () => Promise<string>, headers: Record<string, string>): Promise<void> {
    try {
      const queue = await target();
      this.channel.assertAlive(`delivery ${this.deliveryId}`);
      await this.routes.publishCopy(queue, this.message.content, copyProperties(this.message.properties, headers));
    } catch (error) {
      if (!this.channel.alive) {
        throw new LockLostError(
          `delivery ${this.deliveryId}: the connection closed while settling; the broker redelivers`,
          { cause: error },
        );
      }
      // Not lost and not stuck: the original goes back as it was, and the caller learns why.
      this.channel.nack(this.message, true);
      throw error instanceof TransportError
        ? error
        : new TransportError(`settling ${this.deliveryId} failed: ${describe(error)}`, { cause: error });
    }
    await this.channel.ack(this.message);
  }

  async renewLock(): Promise<void> {
    // AMQP has no lock timeout: the delivery stays ours while its channel lives.
    this.channel.assertAlive(`delivery ${this.deliveryId}`);
  }
}
