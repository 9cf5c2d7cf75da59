/** Tracks timers so that `clearAll()` on emulator close lets the process exit. */
export class TimerSet {
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  setTimeout(fn: () => void, delayMs: number): NodeJS.Timeout {
    const timer: NodeJS.Timeout = setTimeout(
      () => {
        this.#timers.delete(timer);
        if (!this.#closed) fn();
      },
      Math.max(0, delayMs),
    );
    this.#timers.add(timer);
    return timer;
  }

  clear(timer: NodeJS.Timeout | undefined): void {
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#timers.delete(timer);
  }

  clearAll(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}
