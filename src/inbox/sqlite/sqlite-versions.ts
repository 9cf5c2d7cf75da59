import type Database from 'better-sqlite3';
import type { Clock } from '../../internal/clock.js';
import type { EntityVersion } from '../../ordering/ordering-policy.js';
import { classifySqlite, type SqliteConnection, type SqliteTransaction } from './sqlite-connection.js';
import type { SqliteInboxConfig } from './sqlite-inbox-config.js';

/**
 * The ordering guard's statements on SQLite: the last applied version of (endpoint, key), read and
 * written inside the message's write transaction, and the bounded cleanup of expired tombstones.
 */
export class SqliteVersions {
  #readVersion: Database.Statement | undefined;
  #insertVersion: Database.Statement | undefined;
  #updateVersion: Database.Statement | undefined;

  /** `clock` stamps the versions (the bus's: a manual clock's virtual time in tests). */
  constructor(
    private readonly connection: SqliteConnection,
    private readonly config: SqliteInboxConfig,
    private readonly clock: Clock,
  ) {}

  /** Prepares the statements on a connection just opened (its tables made). */
  prepare(db: Database.Database, table: string): void {
    this.#readVersion = db.prepare(
      `SELECT occurred_at, occurred_ms, occurred_ns, message_id, tombstone FROM ${table}_versions WHERE endpoint = ? AND entity_key = ?`,
    );
    this.#insertVersion = db.prepare(
      `INSERT INTO ${table}_versions (endpoint, entity_key, occurred_at, occurred_ms, occurred_ns, message_id, tombstone, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint, entity_key) DO NOTHING`,
    );
    this.#updateVersion = db.prepare(
      `UPDATE ${table}_versions SET occurred_at = ?, occurred_ms = ?, occurred_ns = ?, message_id = ?, tombstone = ?, updated_at = ?
       WHERE endpoint = ? AND entity_key = ?`,
    );
  }

  // The inbox transaction (BEGIN IMMEDIATE) holds the file's write lock: reads and writes of
  // versions inside it are serialised with every other consumer of the file, no row lock needed.
  async readVersion(_tx: SqliteTransaction, endpoint: string, key: string): Promise<EntityVersion | undefined> {
    const row = this.#readVersion?.get(endpoint, key) as Record<string, string | number> | undefined;
    if (!row) return undefined;
    return {
      occurredAt: String(row.occurred_at),
      instant: { epochMs: Number(row.occurred_ms), nanos: Number(row.occurred_ns) },
      messageId: String(row.message_id),
      tombstone: Number(row.tombstone) === 1,
    };
  }

  async writeVersion(
    _tx: SqliteTransaction,
    endpoint: string,
    key: string,
    version: EntityVersion,
    first: boolean,
  ): Promise<boolean> {
    const row = [
      version.occurredAt,
      version.instant.epochMs,
      version.instant.nanos,
      version.messageId,
      version.tombstone ? 1 : 0,
      new Date(this.clock.now()).toISOString(),
    ];
    const changes = first
      ? this.#insertVersion?.run(endpoint, key, ...row).changes
      : this.#updateVersion?.run(...row, endpoint, key).changes;
    return changes === 1;
  }

  cleanupTombstones(endpoint: string, olderThan: Date, limit: number): Promise<number> {
    return this.connection.run(async () => {
      const { table } = this.config;
      const statement = this.connection.open().prepare(
        `DELETE FROM ${table}_versions WHERE (endpoint, entity_key) IN
             (SELECT endpoint, entity_key FROM ${table}_versions WHERE endpoint = ? AND tombstone = 1 AND updated_at < ? LIMIT ?)`,
      );
      try {
        return (await this.connection.whenNotBusy(() => statement.run(endpoint, olderThan.toISOString(), limit)))
          .changes;
      } catch (error) {
        throw classifySqlite(error, 'store');
      }
    });
  }
}
