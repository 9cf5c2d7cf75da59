/** `sluice/sqlite`: the embedded inbox on better-sqlite3 (an optional peer dependency). */
export { SqliteInbox, sqliteInbox, type SqliteTransaction } from './sqlite-inbox.js';
export { type SqliteInboxConfig, SqliteInboxConfigSchema } from './sqlite-inbox-config.js';
export { sqliteInboxDdl, sqliteVersionsDdl } from './sqlite-inbox-ddl.js';
export { sqliteOutboxDdl } from './sqlite-outbox-ddl.js';
