/**
 * The last `size` counted outcomes (success or failure) in a ring, in constant memory: what the
 * consecutive-failures rule weighs a run of failures against. Pure.
 */
export class RecentOutcomes {
  readonly #ring: Uint8Array;
  #next = 0;
  #length = 0;
  #failures = 0;

  constructor(readonly size: number) {
    this.#ring = new Uint8Array(Math.max(0, size));
  }

  record(failed: boolean): void {
    if (this.size === 0) return;
    if (this.#length === this.size) this.#failures -= this.#ring[this.#next] as number;
    else this.#length++;
    this.#ring[this.#next] = failed ? 1 : 0;
    if (failed) this.#failures++;
    this.#next = (this.#next + 1) % this.size;
  }

  counts(): { failures: number; successes: number } {
    return { failures: this.#failures, successes: this.#length - this.#failures };
  }

  clear(): void {
    this.#ring.fill(0);
    this.#next = 0;
    this.#length = 0;
    this.#failures = 0;
  }
}
