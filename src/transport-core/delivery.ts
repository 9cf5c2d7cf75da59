import type { FaultDetails } from '../errors/fault.js';

/**
 * One message received under a lock (peek-lock, an unacked AMQP delivery, an uncommitted Kafka
 * offset). Exactly one settlement operation may succeed; the endpoint is the only caller.
 *
 * Guarantees every transport gives:
 * - until settled, the message stays on the broker: a crash or a closed connection returns it;
 * - a settlement after the lock was lost rejects with `LockLostError` (the broker redelivers);
 * - a second settlement, or one while another is under way, rejects with `AlreadySettledError`.
 *
 * What a failed settlement leaves behind (the one rule; `SettlingDelivery` in `settlement.ts`
 * keeps it for every built-in transport):
 * - rejected with `LockLostError` (the lock expired, the channel, connection or partition is gone,
 *   or the broker refused the settlement for that reason): the delivery is **lost**. Every later
 *   call (settlement or `renewLock`) rejects with `LockLostError`; the broker redelivers.
 * - rejected with any other error (a broker failure while the lock is still held): the delivery is
 *   **open** again. Nothing was removed (a copy may have been written: a duplicate, never a loss);
 *   the caller may settle it again, and the endpoint does (it retries, then releases).
 * - a plain `release()` (no delay, no headers) does not fail that way: when its copy fails it gives
 *   the message back unchanged (a nack, an abandon, Kafka's in-process redelivery), so no delivery
 *   is held for good (an unacked tag on a live channel, a Kafka offset no one settles).
 */
export interface Delivery {
  /** Transport-scoped id of this delivery (not the message id). */
  readonly deliveryId: string;
  /** The bytes as received, untouched. */
  readonly body: Buffer;
  /** Transport headers/properties as strings. Metadata only: business data lives in the body. */
  readonly headers: Readonly<Record<string, string>>;
  /** 1 on the first delivery, +1 on each redelivery of the same message by the broker. */
  readonly deliveryCount: number;
  /** The broker-level partition key, when the transport has one (Kafka key, session id). */
  readonly partitionKey: string | undefined;
  /** The address (queue, subscription, topic) this delivery came from. */
  readonly address: string;
  /**
   * When the lock expires unless renewed (epoch ms), for a broker whose locks expire; undefined
   * when the lock lasts as long as the connection. A retry waiting in process renews it in time.
   */
  readonly lockedUntil?: number;

  /** Removes the message from the broker. */
  complete(): Promise<void>;
  /**
   * Returns the message to the broker. With `delayMs` it becomes visible again no sooner than that.
   * `headers` are merged into the message's headers for its next delivery; a transport that cannot
   * change a message in place sends a copy first and then completes the original, so a crash in
   * between can duplicate but never lose it.
   */
  release(options?: ReleaseOptions): Promise<void>;
  /**
   * Moves the message to the endpoint's dead-letter queue with the fault details, body kept byte for
   * byte. The original is removed only after the dead-letter copy is durable.
   */
  deadLetter(fault: FaultDetails): Promise<void>;
  /** Extends the lock; transports without locks resolve at once. */
  renewLock(): Promise<void>;
}

export interface ReleaseOptions {
  delayMs?: number;
  headers?: Readonly<Record<string, string>>;
}
