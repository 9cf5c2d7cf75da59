import type Database from 'better-sqlite3';
import { type InboxRow, inboxRowOf } from '../inbox-store.js';
import { classifySqlite, type SqliteConnection } from './sqlite-connection.js';
import type { SqliteInboxConfig } from './sqlite-inbox-config.js';

/** The processed rows of the SQLite inbox outside a message's transaction: one looked up, old ones deleted. */
export class SqliteInboxRows {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly config: SqliteInboxConfig,
  ) {}

  cleanup(olderThan: Date, limit: number): Promise<number> {
    return this.connection.run(async () => {
      const { table } = this.config;
      const statement = this.connection.open().prepare(
        `DELETE FROM ${table} WHERE (endpoint, message_id) IN
             (SELECT endpoint, message_id FROM ${table} WHERE processed_at < ? LIMIT ?)`,
      );
      try {
        return (await this.connection.whenNotBusy(() => statement.run(olderThan.toISOString(), limit))).changes;
      } catch (error) {
        throw classifySqlite(error, 'store');
      }
    });
  }

  /**
   * Reads one row as committed: through the read-only connection, so that a transaction in flight
   * (another message's, on the main connection) is not seen before it commits. A `:memory:`
   * database has only the one connection: there `find` waits for the transaction in flight (do not
   * call it from inside a handler).
   */
  async find(endpoint: string, messageId: string): Promise<InboxRow | undefined> {
    const read = (db: Database.Database) =>
      db.prepare(`SELECT * FROM ${this.config.table} WHERE endpoint = ? AND message_id = ?`).get(endpoint, messageId) as
        | Record<string, string | number | null>
        | undefined;
    this.connection.open();
    const reader = this.connection.reader;
    let row: Record<string, string | number | null> | undefined;
    try {
      row = reader
        ? await this.connection.whenNotBusy(() => read(reader))
        : await this.connection.run(async () => read(this.connection.open()));
    } catch (error) {
      throw classifySqlite(error, 'store');
    }
    // SQLite keeps times as ISO text and the envelope as JSON text.
    if (!row) return undefined;
    return inboxRowOf(row, { date: (v) => new Date(String(v)), envelope: (v) => JSON.parse(String(v)) });
  }
}
