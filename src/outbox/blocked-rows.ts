/**
 * Rows this instance wrote behind an earlier row of their key that is not its own in flight (written
 * due, for the relays): while any wait, the relay polls often; after an in-process round, it is woken
 * when one waits behind one of the round's keys. A row another instance's relay dispatched is never
 * reported here: it is forgotten a lease after it was written. Entries are kept in insertion order,
 * so the sweep stops at the first young one (amortised O(1); it runs after every round).
 */
export class BlockedRows {
  readonly #rows = new Map<number, { readonly since: number; readonly key: string | undefined }>();
  /** How many of the rows each key has. */
  readonly #keys = new Map<string, number>();

  constructor(private readonly forgetAfterMs: number) {}

  add(seq: number, key: string | undefined, now: number): void {
    this.#rows.set(seq, { since: now, key });
    if (key !== undefined) this.#keys.set(key, (this.#keys.get(key) ?? 0) + 1);
  }

  /** The row went out (this instance dispatched it). */
  delete(seq: number): void {
    const key = this.#rows.get(seq)?.key;
    if (!this.#rows.delete(seq) || key === undefined) return;
    const left = (this.#keys.get(key) ?? 1) - 1;
    if (left > 0) this.#keys.set(key, left);
    else this.#keys.delete(key);
  }

  /** Whether any row still waits (the expired ones forgotten first). */
  any(now: number): boolean {
    const expired = now - this.forgetAfterMs;
    for (const [seq, { since }] of this.#rows) {
      if (since >= expired) break;
      this.delete(seq);
    }
    return this.#rows.size > 0;
  }

  /** Whether a row waits behind one of `keys`. */
  behindAny(keys: readonly string[], now: number): boolean {
    return this.any(now) && keys.some((key) => this.#keys.has(key));
  }
}
