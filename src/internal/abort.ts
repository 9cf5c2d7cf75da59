import { type Clock, systemClock } from './clock.js';

const subscribers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `callback` once when `signal` aborts; returns a function that unsubscribes (idempotent).
 * Every caller of one signal shares a single `abort` listener on it: an endpoint's signal is
 * waited on by every in-flight delivery at once, and one listener each would pass Node's limit of
 * ten per signal (`MaxListenersExceededWarning`). The caller checks `signal.aborted` first.
 */
export function onAbort(signal: AbortSignal, callback: () => void): () => void {
  let set = subscribers.get(signal);
  if (!set) {
    const created = new Set<() => void>();
    set = created;
    subscribers.set(signal, created);
    signal.addEventListener(
      'abort',
      () => {
        subscribers.delete(signal);
        for (const fn of [...created]) fn();
        created.clear();
      },
      { once: true },
    );
  }
  const subscribed = set;
  subscribed.add(callback);
  return () => {
    subscribed.delete(callback);
  };
}

/**
 * Resolves after `ms` on `clock` (the system clock by default; a manual clock's virtual time in
 * tests), or rejects with the signal's reason as soon as it aborts. The timer is cancelled either
 * way, so a pending delay never holds the process open after an abort.
 */
export function delay(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    let unsubscribe: (() => void) | undefined;
    const cancel = clock.setTimer(() => {
      unsubscribe?.();
      resolve();
    }, ms);
    if (signal) {
      unsubscribe = onAbort(signal, () => {
        cancel();
        reject(signal.reason);
      });
    }
  });
}

/** Resolves when the promise settles or after `ms`, whichever comes first; never rejects. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<'settled' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), Math.max(0, ms));
  });
  try {
    return await Promise.race([
      promise.then(
        () => 'settled' as const,
        () => 'settled' as const,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** `promise`, or `onTimeout()`'s error after `ms` (the timer cleared either way). */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
