/** `sluice/sqlite`: the embedded inbox on better-sqlite3 (an optional peer dependency). */
export {
  SqliteInbox,
  type SqliteInboxConfig,
  SqliteInboxConfigSchema,
  sqliteInbox,
  sqliteInboxDdl,
  sqliteVersionsDdl,
  type SqliteTransaction,
} from './sqlite-inbox.js';
