import type { Clock } from '../internal/clock.js';
import type {
  ClaimOptions,
  HeldRow,
  OutboxLease,
  OutboxMessage,
  OutboxRow,
  OutboxStats,
  OutboxStore,
  WrittenRow,
} from '../outbox/outbox-store.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** A row as the memory store keeps it: whose in-process dispatch holds its lease, committed yet. */
type MemoryRow = Mutable<OutboxRow> & { leasedBy: string | undefined; committed: boolean };

/** What the memory inbox lends its outbox: the current run's undo and commit lists. */
export interface MemoryOutboxDeps {
  readonly clock: Clock;
  /**
   * Registers, for the transaction (run) in progress, what to do if it rolls back (or a savepoint
   * of it does) and what to do when it commits. Throws outside a run.
   */
  readonly inTransaction: (undo: () => void, commit: () => void) => void;
}

/**
 * The outbox in process memory (tests): rows written in a run become visible to claims only when
 * the run commits, and vanish when it (or the savepoint they were written in) rolls back. One
 * process, so `seq` order is commit order per key.
 */
export class MemoryOutbox implements OutboxStore<undefined> {
  readonly #rows = new Map<number, MemoryRow>();
  /** Rows of each key not dispatched and not moved aside (written ones included): the write's check. */
  readonly #pendingByKey = new Map<string, Set<MemoryRow>>();
  #seq = 0;

  /** Puts a row of a key among its key's pending rows, or takes it out. */
  #pend(row: MemoryRow, pending: boolean): void {
    if (row.key === undefined) return;
    const rows = this.#pendingByKey.get(row.key);
    if (pending) {
      if (rows) rows.add(row);
      else this.#pendingByKey.set(row.key, new Set([row]));
    } else if (rows?.delete(row) && rows.size === 0) this.#pendingByKey.delete(row.key);
  }

  /** Ends a row's pending state (dispatched, moved aside, rolled back): once. */
  #settle(row: MemoryRow): void {
    if (!row.dispatchedAt && !row.failedAt) this.#pend(row, false);
  }

  /** Whether a pending row of `key` holds a new one back: one not under a running lease of `owner`. */
  #heldBack(key: string, owner: string, now: number): boolean {
    for (const row of this.#pendingByKey.get(key) ?? []) {
      if (row.leasedBy !== owner || row.nextAttemptAt.getTime() <= now) return true;
    }
    return false;
  }

  constructor(private readonly deps: MemoryOutboxDeps) {}

  async init(): Promise<void> {}

  async write(_tx: undefined, messages: readonly OutboxMessage[], lease: OutboxLease): Promise<readonly WrittenRow[]> {
    const now = new Date(this.deps.clock.now());
    return messages.map((m) => {
      const seq = ++this.#seq;
      const leased = lease.ms > 0 && (m.key === undefined || !this.#heldBack(m.key, lease.owner, now.getTime()));
      const row: MemoryRow = {
        ...m,
        seq,
        createdAt: now,
        attempts: leased ? 1 : 0,
        nextAttemptAt: leased ? new Date(now.getTime() + lease.ms) : now,
        leasedBy: leased ? lease.owner : undefined,
        dispatchedAt: undefined,
        failedAt: undefined,
        failedReason: undefined,
        committed: false,
      };
      this.#rows.set(seq, row);
      this.#pend(row, true);
      this.deps.inTransaction(
        () => {
          if (this.#rows.delete(seq)) this.#settle(row);
        },
        () => {
          row.committed = true;
        },
      );
      return { seq, leased };
    });
  }

  async claim(options: ClaimOptions): Promise<OutboxRow[]> {
    const now = this.deps.clock.now();
    const blocked = new Set<string>();
    const claimed: OutboxRow[] = [];
    for (const row of this.#rows.values()) {
      if (claimed.length >= options.limit) break;
      if (!row.committed || row.dispatchedAt || row.failedAt) continue;
      const head = row.key === undefined || !blocked.has(row.key);
      if (row.key !== undefined) blocked.add(row.key);
      if (!head || row.nextAttemptAt.getTime() > now) continue;
      row.attempts++;
      row.nextAttemptAt = new Date(now + options.leaseMs);
      row.leasedBy = undefined;
      claimed.push(publicRow(row));
    }
    return claimed;
  }

  async markDispatched(seqs: readonly number[], remove: boolean): Promise<void> {
    const now = new Date(this.deps.clock.now());
    for (const seq of seqs) {
      const row = this.#rows.get(seq);
      if (!row) continue;
      this.#settle(row);
      if (remove) this.#rows.delete(seq);
      else row.dispatchedAt = now;
    }
  }

  async retryAfter(rows: readonly (HeldRow & { delayMs: number })[]): Promise<void> {
    const now = this.deps.clock.now();
    for (const r of rows) {
      const row = this.#rows.get(r.seq);
      if (!row || row.attempts !== r.attempts) continue;
      row.nextAttemptAt = new Date(now + r.delayMs);
      row.leasedBy = undefined;
    }
  }

  async moveAside(held: HeldRow, reason: string): Promise<void> {
    const row = this.#rows.get(held.seq);
    if (!row || row.attempts !== held.attempts) return;
    this.#settle(row);
    row.failedAt = new Date(this.deps.clock.now());
    row.failedReason = reason;
  }

  async stats(): Promise<OutboxStats> {
    let depth = 0;
    let movedAside = 0;
    let oldestCreatedAt: Date | undefined;
    for (const row of this.#rows.values()) {
      if (!row.committed) continue;
      if (row.failedAt) movedAside++;
      else if (!row.dispatchedAt) {
        depth++;
        oldestCreatedAt ??= row.createdAt;
      }
    }
    return { depth, oldestCreatedAt, movedAside };
  }

  async cleanup(olderThan: Date, limit: number): Promise<number> {
    let deleted = 0;
    for (const [seq, row] of this.#rows) {
      if (deleted >= limit) break;
      if (row.dispatchedAt && row.dispatchedAt < olderThan) {
        this.#rows.delete(seq);
        deleted++;
      }
    }
    return deleted;
  }

  /** Every committed row, oldest first (kept until retention removes it). */
  committedRows(): OutboxRow[] {
    return [...this.#rows.values()].filter((r) => r.committed).map(publicRow);
  }

  async rows(limit: number): Promise<OutboxRow[]> {
    return this.committedRows().slice(0, limit);
  }
}

/** A row as readers get it, without the store's own fields. */
function publicRow({ committed: _, leasedBy: __, ...row }: MemoryRow): OutboxRow {
  return row;
}
