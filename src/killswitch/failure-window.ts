/** Buckets a window is divided into: it slides in steps of `windowMs / BUCKETS`. */
export const BUCKETS = 20;

/**
 * Counts outcomes and failures over a sliding time window, in constant memory: the window is cut
 * into {@link BUCKETS} buckets and the oldest bucket is dropped as time moves on (as resilience4j's
 * time-based window does). A count covers between `windowMs - bucketMs` and `windowMs` of history.
 * Pure: time is passed in.
 */
export class FailureWindow {
  readonly #bucketMs: number;
  /** Bucket number (`floor(t / bucketMs)`) each slot holds, -1 when empty. */
  readonly #ids = new Array<number>(BUCKETS).fill(-1);
  readonly #messages = new Array<number>(BUCKETS).fill(0);
  readonly #failures = new Array<number>(BUCKETS).fill(0);

  constructor(windowMs: number) {
    this.#bucketMs = Math.max(1, Math.ceil(windowMs / BUCKETS));
  }

  record(now: number, failed: boolean): void {
    const id = Math.floor(now / this.#bucketMs);
    const slot = id % BUCKETS;
    if (this.#ids[slot] !== id) {
      this.#ids[slot] = id;
      this.#messages[slot] = 0;
      this.#failures[slot] = 0;
    }
    (this.#messages[slot] as number)++;
    if (failed) (this.#failures[slot] as number)++;
  }

  counts(now: number): { messages: number; failures: number } {
    const current = Math.floor(now / this.#bucketMs);
    let messages = 0;
    let failures = 0;
    for (let slot = 0; slot < BUCKETS; slot++) {
      const id = this.#ids[slot] as number;
      if (id > current - BUCKETS && id <= current) {
        messages += this.#messages[slot] as number;
        failures += this.#failures[slot] as number;
      }
    }
    return { messages, failures };
  }

  clear(): void {
    this.#ids.fill(-1);
    this.#messages.fill(0);
    this.#failures.fill(0);
  }
}
