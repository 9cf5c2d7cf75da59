import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { Mutex } from '../../internal/mutex.js';
import {
  type InboxDefinition,
  InboxCommonConfigShape,
  type InboxEntry,
  type InboxResult,
  type InboxRow,
  type InboxStore,
  type InboxWork,
  SqlIdentifierSchema,
} from '../inbox-store.js';
import type { EntityVersion } from '../../ordering/ordering-policy.js';

export const SqliteInboxConfigSchema = z.strictObject({
  kind: z.literal('sqlite'),
  /** The database file; created with its directory if missing. `:memory:` for a throwaway one. */
  path: z.string().min(1).default('.sluice/inbox.db'),
  table: SqlIdentifierSchema.default('sluice_inbox'),
  /** How long a write waits for another process's transaction before failing (SQLITE_BUSY). */
  busyTimeoutMs: z.number().int().min(0).max(600_000).default(5_000),
  /** `normal` survives a process crash (WAL); `full` also survives power loss, slower. */
  synchronous: z.enum(['normal', 'full']).default('normal'),
  ...InboxCommonConfigShape,
});
export type SqliteInboxConfig = z.infer<typeof SqliteInboxConfigSchema>;

/** The transaction handle a handler gets: the better-sqlite3 database, inside the inbox transaction. */
export type SqliteTransaction = Database.Database;

/** The DDL the store runs on start; also printed in docs/inbox.md for DBAs. */
export function sqliteInboxDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  endpoint     TEXT    NOT NULL,
  message_id   TEXT    NOT NULL,
  message_type TEXT    NOT NULL,
  entity_key   TEXT,
  occurred_at  TEXT    NOT NULL,
  received_at  TEXT    NOT NULL,
  processed_at TEXT    NOT NULL,
  outcome      TEXT    NOT NULL,
  attempts     INTEGER NOT NULL,
  envelope     TEXT,
  PRIMARY KEY (endpoint, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ${table}_processed_at ON ${table} (processed_at);
${sqliteVersionsDdl(table)}`;
}

/**
 * The ordering guard's table `<table>_versions`: the last applied event per (endpoint, key), and the
 * tombstones. `occurred_ms` + `occurred_ns` hold the instant at full precision (compared);
 * `occurred_at` is the text as sent (for people).
 */
export function sqliteVersionsDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table}_versions (
  endpoint    TEXT    NOT NULL,
  entity_key  TEXT    NOT NULL,
  occurred_at TEXT    NOT NULL,
  occurred_ms INTEGER NOT NULL,
  occurred_ns INTEGER NOT NULL,
  message_id  TEXT    NOT NULL,
  tombstone   INTEGER NOT NULL,
  updated_at  TEXT    NOT NULL,
  PRIMARY KEY (endpoint, entity_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ${table}_versions_tombstones ON ${table}_versions (endpoint, updated_at) WHERE tombstone = 1;`;
}

/**
 * The embedded inbox: one SQLite file in WAL mode. better-sqlite3 is synchronous and a connection
 * holds one transaction at a time, so transactions run one after another (a mutex); handlers that
 * await I/O inside the transaction hold it. Several processes may share the file (busy timeout).
 */
export class SqliteInbox implements InboxStore<SqliteTransaction> {
  readonly kind = 'sqlite';
  readonly #mutex = new Mutex();
  #db: Database.Database | undefined;
  #claim: Database.Statement | undefined;
  #record: Database.Statement | undefined;
  #unclaim: Database.Statement | undefined;
  #readVersion: Database.Statement | undefined;
  #insertVersion: Database.Statement | undefined;
  #updateVersion: Database.Statement | undefined;

  constructor(private readonly config: SqliteInboxConfig) {}

  async init(): Promise<void> {
    if (this.#db) return;
    const { path, table } = this.config;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    // The busy timeout first: switching to WAL and the DDL both wait on another process opening
    // the same file at the same moment instead of failing with SQLITE_BUSY.
    db.pragma(`busy_timeout = ${this.config.busyTimeoutMs}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${this.config.synchronous.toUpperCase()}`);
    db.exec(sqliteInboxDdl(table));
    this.#claim = db.prepare(
      `INSERT INTO ${table} (endpoint, message_id, message_type, entity_key, occurred_at, received_at, processed_at, outcome, attempts, envelope)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'completed', ?, ?) ON CONFLICT (endpoint, message_id) DO NOTHING`,
    );
    this.#record = db.prepare(`UPDATE ${table} SET outcome = ? WHERE endpoint = ? AND message_id = ?`);
    this.#unclaim = db.prepare(`DELETE FROM ${table} WHERE endpoint = ? AND message_id = ?`);
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
    this.#db = db;
  }

  #open(): Database.Database {
    if (!this.#db) throw new Error('the SQLite inbox is not initialised (bus not started?)');
    return this.#db;
  }

  runOnce<R>(entry: InboxEntry, work: (tx: SqliteTransaction) => Promise<InboxWork<R>>): Promise<InboxResult<R>> {
    return this.#mutex.run(async () => {
      const db = this.#open();
      db.exec('BEGIN IMMEDIATE');
      try {
        if (this.#claimRow(entry, new Date().toISOString()) === 0) {
          db.exec('ROLLBACK');
          return { status: 'duplicate' } as const;
        }
        const done = await work(db);
        if (done.recordAs !== undefined && done.recordAs !== 'completed') {
          this.#record?.run(done.recordAs, entry.endpoint, entry.messageId);
        }
        db.exec('COMMIT');
        return { status: 'processed', value: done.result } as const;
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  runBatch<R>(
    entries: readonly InboxEntry[],
    work: (tx: SqliteTransaction, fresh: readonly boolean[]) => Promise<readonly (InboxWork<R> | undefined)[]>,
  ): Promise<InboxResult<R>[]> {
    return this.#mutex.run(async () => {
      const db = this.#open();
      db.exec('BEGIN IMMEDIATE');
      try {
        // In process, one prepared insert per row costs microseconds: no multi-row statement needed.
        const now = new Date().toISOString();
        const fresh = entries.map((e) => this.#claimRow(e, now) === 1);
        const done = await work(db, fresh);
        const results = entries.map((entry, i): InboxResult<R> => {
          const d = done[i];
          if (fresh[i] && !d) this.#unclaim?.run(entry.endpoint, entry.messageId);
          if (!fresh[i] || !d) return { status: 'duplicate' };
          if (d.recordAs !== undefined && d.recordAs !== 'completed') {
            this.#record?.run(d.recordAs, entry.endpoint, entry.messageId);
          }
          return { status: 'processed', value: d.result };
        });
        db.exec('COMMIT');
        return results;
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  #claimRow(entry: InboxEntry, now: string): number {
    return (
      this.#claim?.run(
        entry.endpoint,
        entry.messageId,
        entry.messageType,
        entry.key ?? null,
        entry.occurredAt,
        entry.receivedAt.toISOString(),
        now,
        entry.attempts,
        entry.envelopeJson ?? null,
      ).changes ?? 0
    );
  }

  async withSavepoint<R>(tx: SqliteTransaction, fn: () => Promise<R>): Promise<R> {
    tx.exec('SAVEPOINT sluice_item');
    try {
      const result = await fn();
      tx.exec('RELEASE sluice_item');
      return result;
    } catch (error) {
      tx.exec('ROLLBACK TO sluice_item');
      tx.exec('RELEASE sluice_item');
      throw error;
    }
  }

  cleanup(olderThan: Date, limit: number): Promise<number> {
    return this.#mutex.run(async () => {
      const { table } = this.config;
      const result = this.#open()
        .prepare(
          `DELETE FROM ${table} WHERE (endpoint, message_id) IN
             (SELECT endpoint, message_id FROM ${table} WHERE processed_at < ? LIMIT ?)`,
        )
        .run(olderThan.toISOString(), limit);
      return result.changes;
    });
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
      new Date().toISOString(),
    ];
    const changes = first
      ? this.#insertVersion?.run(endpoint, key, ...row).changes
      : this.#updateVersion?.run(...row, endpoint, key).changes;
    return changes === 1;
  }

  cleanupTombstones(endpoint: string, olderThan: Date, limit: number): Promise<number> {
    return this.#mutex.run(async () => {
      const { table } = this.config;
      const result = this.#open()
        .prepare(
          `DELETE FROM ${table}_versions WHERE (endpoint, entity_key) IN
             (SELECT endpoint, entity_key FROM ${table}_versions WHERE endpoint = ? AND tombstone = 1 AND updated_at < ? LIMIT ?)`,
        )
        .run(endpoint, olderThan.toISOString(), limit);
      return result.changes;
    });
  }

  async find(endpoint: string, messageId: string): Promise<InboxRow | undefined> {
    const row = this.#open()
      .prepare(`SELECT * FROM ${this.config.table} WHERE endpoint = ? AND message_id = ?`)
      .get(endpoint, messageId) as Record<string, string | number | null> | undefined;
    if (!row) return undefined;
    return {
      endpoint: String(row.endpoint),
      messageId: String(row.message_id),
      messageType: String(row.message_type),
      key: row.entity_key === null ? null : String(row.entity_key),
      occurredAt: String(row.occurred_at),
      receivedAt: new Date(String(row.received_at)),
      processedAt: new Date(String(row.processed_at)),
      outcome: String(row.outcome),
      attempts: Number(row.attempts),
      envelope: row.envelope === null ? null : JSON.parse(String(row.envelope)),
    };
  }

  async close(): Promise<void> {
    await this.#mutex.run(async () => {
      this.#db?.close();
      this.#db = undefined;
    });
  }
}

/** The SQLite inbox definition: `createBus({ inbox: { kind: 'sqlite', path } }, { inbox: sqliteInbox() })`. */
export function sqliteInbox(): InboxDefinition<SqliteTransaction, SqliteInboxConfig> {
  return { kind: 'sqlite', configSchema: SqliteInboxConfigSchema, create: (config) => new SqliteInbox(config) };
}
