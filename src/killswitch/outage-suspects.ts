/** Suspects remembered per outage (the oldest is forgotten first): bounded memory. */
const MAX_SUSPECTS = 1_024;

/**
 * The messages whose failure tripped the kill switch during the current outage (while recovering,
 * or as a probe), each with the count of successes the switch had seen then. A suspect that fails
 * again after other messages succeeded failed for its own sake. Pure; cleared when the outage ends.
 */
export class OutageSuspects {
  readonly #at = new Map<string, number>();

  /** Remembers `messageId` (the most recent trip wins), forgetting the oldest past the bound. */
  mark(messageId: string | undefined, successes: number): void {
    if (messageId === undefined) return;
    this.#at.delete(messageId);
    this.#at.set(messageId, successes);
    if (this.#at.size > MAX_SUSPECTS) {
      const oldest = this.#at.keys().next();
      if (!oldest.done) this.#at.delete(oldest.value);
    }
  }

  /** A suspect, and messages succeeded since it tripped the switch (`successes` is the count now). */
  cleared(messageId: string | undefined, successes: number): boolean {
    if (messageId === undefined) return false;
    const at = this.#at.get(messageId);
    return at !== undefined && successes > at;
  }

  clear(): void {
    this.#at.clear();
  }
}
