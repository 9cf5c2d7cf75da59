/** `sluice/postgres`: the inbox on PostgreSQL with `pg` (an optional peer dependency). */
export { PostgresInbox, postgresInbox, type PostgresTransaction } from './postgres-inbox.js';
export { type PostgresInboxConfig, PostgresInboxConfigSchema } from './postgres-inbox-config.js';
export { postgresInboxDdl, postgresVersionsDdl } from './postgres-inbox-ddl.js';
export { postgresOutboxDdl } from './postgres-outbox-ddl.js';
