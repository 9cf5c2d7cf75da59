import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import type { InboxCommonConfig, InboxDefinition, InboxStore } from '../../../src/index.js';
import { memoryInbox, systemClock } from '../../../src/index.js';
import { postgresInbox, type PostgresTransaction } from '../../../src/inbox/postgres/index.js';
import { sqliteInbox, type SqliteTransaction } from '../../../src/inbox/sqlite/index.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';

export const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const deps = { logger: pino({ level: 'silent' }), clock: systemClock };

/** A fresh table name per test run, so parallel test files never share rows. */
export const uniqueTable = (prefix: string) => `${prefix}_${Math.random().toString(36).slice(2, 10)}`;

export function sqliteStore(
  table = uniqueTable('inbox'),
  extra: Record<string, unknown> = {},
): { store: InboxStore<SqliteTransaction>; path: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'sluice-sqlite-')), 'inbox.db');
  const def = sqliteInbox();
  return { store: def.create(def.configSchema.parse({ kind: 'sqlite', path, table, ...extra }), deps), path };
}

export function postgresStore(
  table = uniqueTable('inbox'),
  extra: Record<string, unknown> = {},
): InboxStore<PostgresTransaction> {
  const def = postgresInbox();
  return def.create(
    def.configSchema.parse({ kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table, ...extra }),
    deps,
  );
}

/** A plain pg pool for test assertions and effect tables. */
export function testPool(): pg.Pool {
  return new pg.Pool({ connectionString: PG_URL, max: 4 });
}

export type StoreKind = 'memory' | 'sqlite' | 'postgres';

/** A bus's inbox of `kind` (a fresh SQLite file, a fresh PostgreSQL table in TEST_SCHEMA): definition and config. */
export function inboxOf(kind: StoreKind): {
  inbox: InboxDefinition<unknown, InboxCommonConfig & { kind: string }>;
  config: object;
} {
  switch (kind) {
    case 'memory':
      return { inbox: memoryInbox() as never, config: { kind: 'memory' } };
    case 'sqlite':
      return {
        inbox: sqliteInbox() as never,
        config: { kind: 'sqlite', path: join(mkdtempSync(join(tmpdir(), 'sluice-bus-inbox-')), 'inbox.db') },
      };
    case 'postgres':
      return {
        inbox: postgresInbox() as never,
        config: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table: uniqueTable('inbox') },
      };
  }
}
