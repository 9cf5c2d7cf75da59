import type { MemoryInbox } from '../inbox/memory-inbox.js';
import type { Consumed, HistoryBackend } from './history-backend.js';
import type { CausedMessage, HistoryQuery, HistoryRecord, LostTo, StoredHistoryRecord } from './history-record.js';

/**
 * The history beside the memory inbox, for tests: rows in an array. A row written inside a run of
 * the inbox is taken back when the run's work throws (the store's `track`), as a rollback would.
 */
export class MemoryHistory implements HistoryBackend {
  #rows: StoredHistoryRecord[] = [];
  #seq = 0;

  constructor(private readonly store: MemoryInbox) {}

  async init(): Promise<void> {}

  async write(_tx: unknown, record: HistoryRecord): Promise<void> {
    const row = { ...record, seq: ++this.#seq };
    this.#rows.push(row);
    this.store.track(() => {
      this.#rows = this.#rows.filter((r) => r !== row);
    });
  }

  async writeMany(tx: unknown, records: readonly HistoryRecord[]): Promise<void> {
    for (const r of records) await this.write(tx, r);
  }

  async read(_tx: unknown, query: HistoryQuery): Promise<StoredHistoryRecord[]> {
    const rows = this.#rows.filter(
      (r) =>
        (query.key === undefined || r.key === query.key) &&
        (query.messageId === undefined || r.messageId === query.messageId) &&
        (query.endpoints === undefined || query.endpoints.includes(r.endpoint)) &&
        (query.since === undefined || r.recordedAt >= query.since),
    );
    return rows.slice(Math.max(0, rows.length - query.limit));
  }

  async cleanup(_tx: unknown, olderThan: Date, limit: number): Promise<number> {
    const old = this.#rows.filter((r) => r.recordedAt < olderThan).slice(0, limit);
    const gone = new Set(old);
    this.#rows = this.#rows.filter((r) => !gone.has(r));
    return old.length;
  }

  async lastApplied(_tx: unknown, endpoint: string, key: string): Promise<LostTo | undefined> {
    const version = await this.store.readVersion(undefined, endpoint, key);
    return version && { occurredAt: version.occurredAt, messageId: version.messageId, tombstone: version.tombstone };
  }

  /** What the consumed messages caused: the memory outbox's rows (kept for the outbox's retention). */
  async caused(_tx: unknown, consumed: readonly Consumed[]): Promise<CausedMessage[]> {
    const wanted = new Set(consumed.map((c) => `${c.endpoint}\u0000${c.messageId}`));
    const iso = (d: Date | undefined) => (d === undefined ? null : d.toISOString());
    return this.store
      .outboxRows()
      .filter((r) => r.sourceEndpoint !== undefined && r.causationId !== undefined)
      .filter((r) => wanted.has(`${r.sourceEndpoint}\u0000${r.causationId}`))
      .map((r) => ({
        sourceEndpoint: r.sourceEndpoint as string,
        causationId: r.causationId as string,
        messageId: r.messageId,
        messageType: r.messageType,
        destinationKind: r.destinationKind,
        destination: r.destination,
        createdAt: iso(r.createdAt),
        dispatchedAt: iso(r.dispatchedAt),
        failedAt: iso(r.failedAt),
        failedReason: r.failedReason ?? null,
      }));
  }
}
