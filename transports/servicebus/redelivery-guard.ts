import type { ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';
import type { Clock } from '../../src/transport-core/index.js';

/** What a guard needs to renew locks: the link's receiver, the clock, how long to keep a lock. */
export interface LockRenewal {
  readonly receiver: ServiceBusReceiver;
  readonly clock: Clock;
  /** `maxAutoLockRenewalDurationMs`: renewal stops this long after the message arrived. */
  readonly renewForMs: number;
}

/**
 * The deliveries one (session-less) receiver link holds, by sequence number. It renews the lock of
 * a delivery itself when its message came again while an earlier delivery of it was still held on
 * the link (the broker hands a message out again once its lock is gone: expired under load).
 *
 * Why: the SDK (7.9.x) keys its automatic lock renewal by message id, per link, and stops it when
 * any delivery of that id is settled. The late settlement of the stale delivery (refused: its lock
 * is gone; it must still be settled on the link, or rhea's buffers of unsettled deliveries fill)
 * stopped the renewal of the new delivery, whose lock then expired too while it waited for its turn
 * to settle. The next delivery's renewal was stopped the same way, and so on until the broker
 * dead-lettered the message (`MaxDeliveryCountExceeded`) with no handler failing.
 */
export class RedeliveryGuard {
  /** Sequence number → how many deliveries of it the link holds. */
  readonly #held = new Map<string, number>();

  /** `undefined`: no renewal of its own (a session lane: the session holds the lock; or renewal off). */
  constructor(private readonly renewal: LockRenewal | undefined) {}

  /** A delivery of `message` arrived on the link; returns what to call once it no longer holds it. */
  received(message: ServiceBusReceivedMessage): () => void {
    const key = message.sequenceNumber?.toString();
    if (key === undefined) return () => {};
    const held = this.#held.get(key) ?? 0;
    this.#held.set(key, held + 1);
    const stopRenewing = held > 0 && this.renewal ? keepLocked(message, this.renewal) : undefined;
    return () => {
      stopRenewing?.();
      const left = (this.#held.get(key) ?? 1) - 1;
      if (left > 0) this.#held.set(key, left);
      else this.#held.delete(key);
    };
  }
}

/**
 * Renews the lock of `message` until stopped, as the SDK's automatic renewal does: when half of
 * the time left has passed (at most 10 s before the lock ends), for at most `renewForMs` from now.
 * A renewal that fails ends it: the lock expires, and the settlement reports `LockLostError`.
 */
function keepLocked(message: ServiceBusReceivedMessage, { receiver, clock, renewForMs }: LockRenewal): () => void {
  const until = clock.now() + renewForMs;
  let stopped = false;
  let cancel = () => {};
  const schedule = () => {
    const lockedUntil = message.lockedUntilUtc?.getTime();
    if (stopped || lockedUntil === undefined || lockedUntil >= until) return;
    const left = lockedUntil - clock.now();
    cancel = clock.setTimer(
      () => {
        if (!stopped) receiver.renewMessageLock(message).then(schedule, () => {});
      },
      Math.max(0, left - Math.min(left / 2, 10_000)),
    );
  };
  schedule();
  return () => {
    stopped = true;
    cancel();
  };
}
