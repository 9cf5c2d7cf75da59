import { delay } from '../internal/abort.js';
import { type Clock, systemClock } from '../internal/clock.js';
import type { DeliveryView } from './context.js';

/**
 * How often a delivery's lock is renewed while a retry waits in process: every second, or a third of
 * the lock's remaining time when the transport says when it expires (`Delivery.lockedUntil`).
 */
export const LOCK_RENEW_INTERVAL_MS = 1_000;
const MIN_RENEW_INTERVAL_MS = 5;

function renewInterval(delivery: DeliveryView, most: number, clock: Clock): number {
  const until = delivery.lockedUntil;
  if (until === undefined) return most;
  return Math.max(MIN_RENEW_INTERVAL_MS, Math.min(most, Math.floor((until - clock.now()) / 3)));
}

/**
 * Waits `ms` in process while keeping the delivery's lock: renews it at the start, every
 * `renewEveryMs` (sooner for a lock about to expire), and once more at the end, right before the
 * caller runs the handler again. A
 * renewal that fails means the broker may already have handed the message to another consumer, so
 * the caller must not run the handler again (`lock-lost`): one handler run at a time per message.
 * `stopping`: the signal aborted (the endpoint is stopping). `left` is the part of the wait not spent.
 * Time is the `clock`'s (the endpoint's), as is `lockedUntil` of a transport given the same clock.
 */
export async function waitHoldingLock(
  delivery: DeliveryView,
  ms: number,
  signal: AbortSignal,
  clock: Clock = systemClock,
  renewEveryMs = LOCK_RENEW_INTERVAL_MS,
): Promise<{ readonly result: 'waited' | 'stopping' | 'lock-lost'; readonly left: number }> {
  let left = ms;
  try {
    await delivery.renewLock();
  } catch {
    return { result: 'lock-lost', left };
  }
  while (left > 0) {
    const step = Math.min(left, renewInterval(delivery, renewEveryMs, clock));
    try {
      await delay(step, signal, clock);
    } catch {
      return { result: 'stopping', left };
    }
    left -= step;
    try {
      await delivery.renewLock();
    } catch {
      return { result: 'lock-lost', left };
    }
  }
  return { result: 'waited', left: 0 };
}
