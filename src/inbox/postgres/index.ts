/** `sluice/postgres`: the inbox on PostgreSQL with `pg` (an optional peer dependency). */
export {
  PostgresInbox,
  type PostgresInboxConfig,
  PostgresInboxConfigSchema,
  postgresInbox,
  postgresInboxDdl,
  postgresVersionsDdl,
  type PostgresTransaction,
} from './postgres-inbox.js';
