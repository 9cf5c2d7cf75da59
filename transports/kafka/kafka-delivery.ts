import type { Delivery, FaultDetails, ReleaseOptions } from '../../src/transport/index.js';
import { AlreadySettledError, LockLostError } from '../../src/transport/index.js';

const DONE: Promise<void> = Promise.resolve();

/** What a delivery needs from the consumer that handed it out. */
export interface DeliveryOwner {
  /**
   * Writes the retry-topic copy (acks=all) and resolves true; resolves false when the copy does not
   * fit the retry topic and the owner hands the record out again itself after the delay (its offset
   * stays unsettled meanwhile).
   */
  writeRetryCopy(delivery: KafkaDelivery, options: ReleaseOptions): Promise<boolean>;
  /** Writes the dead-letter copy (acks=all). */
  writeDeadLetter(delivery: KafkaDelivery, fault: FaultDetails): Promise<void>;
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
 * One Kafka record handed out under its uncommitted offset. Completing it marks the offset settled
 * (committed once every lower offset is settled too); release writes a copy to the endpoint's retry
 * topic, dead-letter a copy to its dead-letter topic, both with acks=all before the offset counts as
 * settled. When the partition is revoked (rebalance) or the consumer closes first, settlement
 * rejects with `LockLostError` and the record comes again to whoever owns the partition.
 */
export class KafkaDelivery implements Delivery {
  #state: 'open' | 'settling' | 'settled' = 'open';

  constructor(
    private readonly owner: DeliveryOwner,
    /** The partition it came from (the consumer's state for it). */
    readonly lease: PartitionLease,
    readonly offset: number,
    /** The record key as received. */
    readonly key: Buffer | null,
    /** Headers as received (including transport headers hidden from `headers`). */
    readonly rawHeaders: Readonly<Record<string, string>>,
    readonly address: string,
    readonly body: Buffer,
    readonly headers: Readonly<Record<string, string>>,
    readonly deliveryCount: number,
    readonly partitionKey: string | undefined,
  ) {}

  /** `<topic>:<partition>:<offset>`; built on use only (logs, copies). */
  get deliveryId(): string {
    return `${this.lease.topic}:${this.lease.partition}:${this.offset}`;
  }

  /** Not settled, and its partition still owned. */
  get open(): boolean {
    return this.#state !== 'settled' && !this.lease.revoked;
  }

  #begin(): void {
    if (this.#state !== 'settled' && this.lease.revoked) throw this.#lost();
    if (this.#state !== 'open') throw new AlreadySettledError(this.deliveryId);
    this.#state = 'settling';
  }

  #finish(): void {
    // A copy written after the partition was revoked is a duplicate: the new owner reads the original.
    if (this.lease.revoked) throw this.#lost();
    this.#state = 'settled';
    this.owner.settled(this);
  }

  #lost(): LockLostError {
    return new LockLostError(`partition of ${this.deliveryId} was revoked or its consumer closed; it comes again`);
  }

  /** Not async (every message completes): the same checks, a failure returned as a rejection. */
  complete(): Promise<void> {
    try {
      this.#begin();
      this.#finish();
    } catch (error) {
      return Promise.reject(error);
    }
    return DONE;
  }

  async release(options: ReleaseOptions = {}): Promise<void> {
    this.#begin();
    let copied: boolean;
    try {
      copied = await this.owner.writeRetryCopy(this, options);
    } catch (error) {
      this.#state = 'open';
      throw error;
    }
    if (copied) return this.#finish();
    // Held for an in-process redelivery: done for this delivery, not for its offset.
    if (this.lease.revoked) throw this.#lost();
    this.#state = 'settled';
  }

  async deadLetter(fault: FaultDetails): Promise<void> {
    this.#begin();
    try {
      await this.owner.writeDeadLetter(this, fault);
    } catch (error) {
      this.#state = 'open';
      throw error;
    }
    this.#finish();
  }

  /** Kafka has no per-record lock: resolves while the partition is owned, else `LockLostError`. */
  async renewLock(): Promise<void> {
    if (this.#state !== 'settled' && this.lease.revoked) throw this.#lost();
  }
}
