import type { CopyTarget, LockLostError, TransportCapabilities } from '../../src/transport-core/index.js';
import { ACKNOWLEDGED, KEPT_FOR_REDELIVERY, SettlingDelivery } from '../../src/transport-core/index.js';
import type { HeldRecords } from './held-records.js';
import type { SettlementCopies } from './settlement-copies.js';

/** What Kafka gives natively (offsets, partition order) and what the settlement kernel builds on top. */
export const kafkaCapabilities: TransportCapabilities = {
  nativeDelay: false,
  nativeDeadLetter: false,
  deliveryCount: 'header',
  ordering: 'partition',
  durable: true,
};

/** What a delivery needs from the consumer that handed it out: Kafka's settlement primitives. */
export interface DeliveryOwner {
  /** Retry-topic and dead-letter-topic copies (acks=all). */
  readonly copies: Pick<SettlementCopies, 'retry' | 'deadLetter'>;
  /** Records handed out again in process after a delay, their offsets unsettled meanwhile. */
  readonly held: Pick<HeldRecords, 'redeliverLater'>;
  /** The delivery is done: its offset may be committed. */
  settled(delivery: KafkaDelivery): void;
}

/**
 * The partition a delivery was read from, shared by all its deliveries: `revoked` turns true when
 * this member loses the partition (rebalance) or its consumer closes, which loses every delivery
 * of it at once without the consumer keeping a set of them.
 */
export interface PartitionLease {
  readonly topic: string;
  readonly partition: number;
  readonly revoked: boolean;
}

/**
 * One Kafka record handed out under its uncommitted offset, on the settlement kernel. Kafka's
 * primitives: acknowledge marks the offset settled (committed once every lower offset is settled
 * too); a copy goes to the endpoint's retry topic (with its due time: Kafka's delay) or its
 * dead-letter topic, with acks=all, before the offset counts as settled; returning a record
 * unchanged hands it out again in process, its offset held (never an offset left unsettled for
 * good). When the partition is revoked (rebalance) or the consumer closes first, settlement
 * rejects with `LockLostError` and the record comes again to whoever owns the partition.
 */
export class KafkaDelivery extends SettlingDelivery {
  protected readonly capabilities = kafkaCapabilities;

  constructor(
    private readonly owner: DeliveryOwner,
    /** The partition it came from (the consumer's state for it). */
    readonly lease: PartitionLease,
    readonly offset: number,
    /** The record key as received. */
    readonly key: Buffer | null,
    readonly address: string,
    readonly body: Buffer,
    /**
     * The record's headers, less a retry record's due time: the one header the endpoint does not
     * see, which every copy sets anew (retry) or leaves out (dead letter, held record).
     */
    readonly headers: Readonly<Record<string, string>>,
    readonly deliveryCount: number,
    readonly partitionKey: string | undefined,
  ) {
    super();
  }

  /** The same record handed out again in process (`HeldRecords`), counted once more. */
  again(headers: Record<string, string>): KafkaDelivery {
    const { owner, lease, offset, key, address, body, deliveryCount, partitionKey } = this;
    return new KafkaDelivery(owner, lease, offset, key, address, body, headers, deliveryCount + 1, partitionKey);
  }

  /** `<topic>:<partition>:<offset>`; built on use only (logs, copies). */
  get deliveryId(): string {
    return `${this.lease.topic}:${this.lease.partition}:${this.offset}`;
  }

  protected override lockGone(): boolean {
    return this.lease.revoked;
  }

  protected override lost(): LockLostError {
    return super.lost('its partition was revoked or its consumer closed');
  }

  protected acknowledge(): Promise<void> {
    // A copy written after the partition was revoked is a duplicate: the new owner reads the original.
    if (this.lease.revoked) throw this.lost();
    this.owner.settled(this);
    return ACKNOWLEDGED;
  }

  protected giveBack(): undefined {
    return undefined; // Kafka changes nothing in place: a release is a retry-topic copy
  }

  protected async copy(
    target: CopyTarget,
    headers: Record<string, string>,
  ): Promise<typeof KEPT_FOR_REDELIVERY | undefined> {
    if (target.kind === 'deadLetter') {
      await this.owner.copies.deadLetter(this, headers);
      return undefined;
    }
    if (await this.owner.copies.retry(this, headers, target.delayMs)) return undefined;
    // Held for an in-process redelivery: done for this delivery, not for its offset.
    if (this.lease.revoked) throw this.lost();
    this.owner.held.redeliverLater(this, headers, target.delayMs);
    return KEPT_FOR_REDELIVERY;
  }

  protected async returnUnchanged(): Promise<void> {
    if (this.lease.revoked) throw this.lost();
    this.owner.held.redeliverLater(this, { ...this.headers }, 0);
  }
}
