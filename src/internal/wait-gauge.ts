/**
 * Counts the deliveries of a bus that are waiting rather than working: for a timer (an in-process
 * retry wait, a batch or group commit gathering, a settlement retry's pause) or for another
 * delivery (a key's turn or a free slot, a probe slot of the kill switch). The bus only counts;
 * `sluice/testing` reads it to tell when nothing but the clock can move a bus forward, and so when
 * virtual time may be advanced. Every `enter` is matched by exactly one `leave`.
 */
export class WaitGauge {
  #waiting = 0;
  #listener: (() => void) | undefined;

  /** Deliveries waiting right now. */
  get waiting(): number {
    return this.#waiting;
  }

  enter(): void {
    this.#waiting++;
    this.#listener?.();
  }

  leave(): void {
    this.#waiting--;
    this.#listener?.();
  }

  /** Calls `listener` after every change (one listener: the harness that reads the gauge). */
  onChange(listener: (() => void) | undefined): void {
    this.#listener = listener;
  }
}
