import type pg from 'pg';
import type { EntityVersion } from '../../ordering/ordering-policy.js';
import type { Classify, PostgresTransaction } from './postgres-pool.js';

/**
 * The ordering guard's statements on PostgreSQL: the last applied version of (endpoint, key), read
 * `FOR UPDATE` inside the message's transaction and written there, and the bounded cleanup of
 * expired tombstones.
 */
export class PostgresVersions {
  readonly #pool: pg.Pool;
  readonly #versions: string;
  readonly #classified: Classify;

  /** `versions`: the versions table with its schema. */
  constructor(pool: pg.Pool, versions: string, classified: Classify) {
    this.#pool = pool;
    this.#versions = versions;
    this.#classified = classified;
  }

  async readVersion(tx: PostgresTransaction, endpoint: string, key: string): Promise<EntityVersion | undefined> {
    const { rows } = await tx.query({
      name: `sluice-read-version-${this.#versions}`,
      text: `SELECT occurred_at, occurred_ms, occurred_ns, message_id, tombstone FROM ${this.#versions}
             WHERE endpoint = $1 AND entity_key = $2 FOR UPDATE`,
      values: [endpoint, key],
    });
    const row = rows[0] as Record<string, unknown> | undefined;
    if (!row) return undefined;
    return {
      occurredAt: String(row.occurred_at),
      instant: { epochMs: Number(row.occurred_ms), nanos: Number(row.occurred_ns) },
      messageId: String(row.message_id),
      tombstone: row.tombstone === true,
    };
  }

  async writeVersion(
    tx: PostgresTransaction,
    endpoint: string,
    key: string,
    version: EntityVersion,
    first: boolean,
  ): Promise<boolean> {
    const values = [
      endpoint,
      key,
      version.occurredAt,
      version.instant.epochMs,
      version.instant.nanos,
      version.messageId,
      version.tombstone,
    ];
    if (first) {
      // Blocks on a concurrent first insert of the key until it commits (then inserts nothing).
      const inserted = await tx.query({
        name: `sluice-insert-version-${this.#versions}`,
        text: `INSERT INTO ${this.#versions} (endpoint, entity_key, occurred_at, occurred_ms, occurred_ns, message_id, tombstone)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (endpoint, entity_key) DO NOTHING`,
        values,
      });
      return inserted.rowCount === 1;
    }
    await tx.query({
      name: `sluice-update-version-${this.#versions}`,
      text: `UPDATE ${this.#versions} SET occurred_at = $3, occurred_ms = $4, occurred_ns = $5, message_id = $6,
               tombstone = $7, updated_at = now() WHERE endpoint = $1 AND entity_key = $2`,
      values,
    });
    return true;
  }

  async cleanupTombstones(endpoint: string, olderThan: Date, limit: number): Promise<number> {
    // SKIP LOCKED: a tombstone a running transaction holds is left for the next run.
    const result = await this.#classified(() =>
      this.#pool.query(
        `DELETE FROM ${this.#versions} WHERE ctid IN
         (SELECT ctid FROM ${this.#versions} WHERE endpoint = $1 AND tombstone AND updated_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)`,
        [endpoint, olderThan, limit],
      ),
    );
    return result.rowCount ?? 0;
  }
}
