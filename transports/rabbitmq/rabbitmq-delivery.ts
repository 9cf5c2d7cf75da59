import { randomUUID } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import type { CopyTarget, TransportCapabilities } from '../../src/transport-core/index.js';
import {
  ACKNOWLEDGED,
  deliveryCountOf,
  SettlingDelivery,
  SluiceHeader,
  stringHeaders,
  withoutHeaders,
} from '../../src/transport-core/index.js';
import { BROKER_HEADERS, copyProperties } from './amqp-headers.js';
import type { ConsumerChannel } from './consumer-channel.js';

/** Header naming a dead-letter copy for redrive selection (removed again on redrive). */
export const DEAD_LETTER_ID_HEADER = 'sluice-dead-letter-id';

/** What a delivery needs from its transport to settle by re-publishing a copy. */
export interface SettlementRoutes {
  readonly address: string;
  readonly capabilities: TransportCapabilities;
  /** Publishes a copy with confirms; resolves once the broker has it. */
  publishCopy(routingKey: string, content: Buffer, options: import('amqplib').Options.Publish): Promise<void>;
  /** The delay queue for at least `delayMs` in front of the endpoint (declared if needed). */
  delayQueue(delayMs: number): Promise<string>;
}

/**
 * One unacked AMQP delivery, on the settlement kernel. Its primitives:
 * - acknowledge: ack (coalesced per event-loop turn);
 * - give back: nack with requeue, only for a release with no delay and no headers on a quorum queue
 *   (the broker counts it); return unchanged: the same nack, on any queue;
 * - copy: published with confirms to the endpoint queue, its delay queue, or `<queue>.dlq` (with
 *   `sluice-dead-letter-id`); the kernel acks the original only after the confirm.
 * AMQP has no dead-letter queue Sluice can address per message, and no delay of its own.
 */
export class RabbitmqDelivery extends SettlingDelivery {
  #headers: Record<string, string> | undefined;

  constructor(
    private readonly message: ConsumeMessage,
    private readonly channel: ConsumerChannel,
    private readonly routes: SettlementRoutes,
  ) {
    super();
  }

  protected get capabilities(): TransportCapabilities {
    return this.routes.capabilities;
  }

  get deliveryId(): string {
    return `${this.routes.address}#${this.channel.id}.${this.message.fields.deliveryTag}`;
  }
  get body(): Buffer {
    return this.message.content;
  }
  get headers(): Readonly<Record<string, string>> {
    this.#headers ??= stringHeaders(this.message.properties.headers);
    return this.#headers;
  }
  get deliveryCount(): number {
    const raw = this.message.properties.headers;
    const counted = raw?.['x-delivery-count'];
    return deliveryCountOf(raw, typeof counted === 'number' ? counted : this.message.fields.redelivered ? 1 : 0);
  }
  get partitionKey(): string | undefined {
    return undefined;
  }
  get address(): string {
    return this.routes.address;
  }

  protected override lockGone(): boolean {
    return !this.channel.alive;
  }

  protected override copyHeaders(): Record<string, string> {
    return withoutHeaders(this.headers, BROKER_HEADERS);
  }

  protected acknowledge(): Promise<void> {
    return this.channel.ack(this.message);
  }

  protected giveBack(
    headers: Readonly<Record<string, string>> | undefined,
    delayMs: number,
  ): Promise<void> | undefined {
    // Called only where the queue counts redeliveries (quorum): a nack cannot carry headers.
    if (delayMs > 0 || headers) return undefined;
    return this.returnUnchanged();
  }

  protected returnUnchanged(): Promise<void> {
    this.channel.nack(this.message, true);
    return ACKNOWLEDGED;
  }

  protected async copy(target: CopyTarget, headers: Record<string, string>): Promise<undefined> {
    if (target.kind === 'deadLetter') {
      delete headers[SluiceHeader.deliveryCount];
      headers[DEAD_LETTER_ID_HEADER] = randomUUID();
    }
    const queue =
      target.kind === 'deadLetter'
        ? `${this.routes.address}.dlq`
        : target.delayMs > 0
          ? await this.routes.delayQueue(target.delayMs)
          : this.routes.address;
    this.channel.assertAlive(`delivery ${this.deliveryId}`);
    // A failure with the channel gone is a lost lock (the kernel asks lockGone), else the delivery stays open.
    await this.routes.publishCopy(queue, this.message.content, copyProperties(this.message.properties, headers));
  }
}
