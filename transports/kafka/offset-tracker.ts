/**
 * Tracks the deliveries handed out from one Kafka partition and says which offset may be committed.
 *
 * Kafka commits a position, not individual messages: committing offset `n` says every record below
 * `n` is done. Deliveries settle out of order (different keys run concurrently), so the committable
 * offset is the lowest offset still unsettled, or one past the highest tracked offset when nothing is
 * unsettled. Offsets must be tracked in increasing order; gaps (compaction, transaction markers,
 * records skipped without a delivery) are allowed.
 *
 * Pure and synchronous: no I/O, no timers. Offsets are JavaScript numbers (exact below 2^53).
 */
export class OffsetTracker {
  #offsets: number[] = [];
  #settled: boolean[] = [];
  #head = 0;
  #unsettled = 0;
  #next: number | undefined;

  /**
   * @param start the partition's fetch position when the tracker is created (the committed offset),
   *   so that `committable` is defined before anything is tracked; optional.
   */
  constructor(start?: number) {
    this.#next = start;
  }

  /** One past the highest offset tracked (or the start); `undefined` before anything is known. */
  get nextOffset(): number | undefined {
    return this.#next;
  }

  /** Deliveries tracked and not settled. */
  get unsettled(): number {
    return this.#unsettled;
  }

  /** Whether `offset` was already tracked (or lies below the start): a re-fetched record. */
  seen(offset: number): boolean {
    return this.#next !== undefined && offset < this.#next;
  }

  /** Records a delivery handed out at `offset`. Throws `RangeError` when offsets do not increase. */
  track(offset: number): void {
    if (this.#next !== undefined && offset < this.#next) {
      throw new RangeError(`offset ${offset} tracked out of order (next expected ${this.#next} or later)`);
    }
    this.#offsets.push(offset);
    this.#settled.push(false);
    this.#unsettled++;
    this.#next = offset + 1;
  }

  /** Records an offset passed over without a delivery (it counts as settled at once). */
  skip(offset: number): void {
    if (this.#next !== undefined && offset < this.#next) return;
    this.#next = offset + 1;
    if (this.#unsettled === 0) this.#clear();
  }

  /**
   * Marks `offset` settled. Returns false when it is not tracked or already settled (idempotent).
   */
  settle(offset: number): boolean {
    const i = this.#indexOf(offset);
    if (i < 0 || this.#settled[i]) return false;
    this.#settled[i] = true;
    this.#unsettled--;
    this.#advance();
    return true;
  }

  /**
   * The offset to commit: every record below it is settled or was skipped. `undefined` until an
   * offset is known. Never decreases.
   */
  get committable(): number | undefined {
    if (this.#head < this.#offsets.length) return this.#offsets[this.#head];
    return this.#next;
  }

  #advance(): void {
    const offsets = this.#offsets;
    const settled = this.#settled;
    while (this.#head < offsets.length && settled[this.#head]) this.#head++;
    if (this.#head === offsets.length) this.#clear();
    else if (this.#head > 1024 && this.#head * 2 > offsets.length) {
      this.#offsets = offsets.slice(this.#head);
      this.#settled = settled.slice(this.#head);
      this.#head = 0;
    }
  }

  #clear(): void {
    this.#offsets = [];
    this.#settled = [];
    this.#head = 0;
  }

  /** Binary search in the window; offsets are strictly increasing. */
  #indexOf(offset: number): number {
    const offsets = this.#offsets;
    let lo = this.#head;
    let hi = offsets.length - 1;
    // Fast path: contiguous offsets (the usual case) index directly.
    const first = offsets[lo];
    if (first !== undefined) {
      const guess = lo + (offset - first);
      if (guess >= lo && guess <= hi && offsets[guess] === offset) return guess;
    }
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const value = offsets[mid] as number;
      if (value === offset) return mid;
      if (value < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
