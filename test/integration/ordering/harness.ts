import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino, { type Logger } from 'pino';
import { z } from 'zod';
import {
  type Bus,
  checkTimestamp,
  cloudEventsCodec,
  createBus,
  createEnvelope,
  createMemoryBroker,
  defineMessage,
  type EndpointOptions,
  type HandleOptions,
  memoryInbox,
  memoryTransport,
} from '../../../src/index.js';
import { postgresInbox, type PostgresTransaction } from '../../../src/inbox/postgres/index.js';
import { sqliteInbox, type SqliteTransaction } from '../../../src/inbox/sqlite/index.js';
import { compareVersions } from '../../../src/ordering/ordering-policy.js';
import { waitFor } from '../../support/wait-for.js';
import { PG_URL, testPool, uniqueTable } from '../inbox/stores.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';

export type StoreKind = 'memory' | 'sqlite' | 'postgres';
export const STORE_KINDS: readonly StoreKind[] = ['memory', 'sqlite', 'postgres'];

/** The test's entity: a value per key, written by the handler through the inbox transaction. */
export const EntityUpdated = defineMessage('test.entity-updated.v1', z.object({ value: z.number() }));

/** One event as a test produces it. */
export interface TestEvent {
  readonly id: string;
  readonly key: string;
  /** RFC 3339 with an offset. */
  readonly occurredAt: string;
  readonly tombstone: boolean;
  readonly value: number;
}

/** The entity state the handler keeps: the last event it applied per key. */
export interface StateRow {
  readonly value: number | null;
  readonly deleted: boolean;
  readonly occurredAt: string;
  readonly messageId: string;
}

/** Handler writes in the store's own transaction, so they commit or roll back with the version. */
interface EffectStore<TTx> {
  read(tx: TTx, key: string): Promise<StateRow | undefined>;
  write(tx: TTx, key: string, row: StateRow): Promise<void>;
  all(): Promise<Map<string, StateRow>>;
  drop(): Promise<void>;
}

export interface Harness {
  readonly bus: Bus<unknown>;
  readonly kind: StoreKind;
  /** Every log line at info and above, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Handler calls that saw an event not newer than the one applied before for its key. */
  readonly violations: string[];
  /** Tombstones the tombstone handler received (key, message id). */
  readonly tombstonesSeen: { key: string | undefined; id: string }[];
  /** Ids whose first handler attempt throws after writing its effect (rolled back, then retried). */
  readonly failOnce: Set<string>;
  send(event: TestEvent): Promise<void>;
  /** Waits until `n` more deliveries than at the last call reached a final outcome. */
  settled(n: number): Promise<void>;
  state(): Promise<Map<string, StateRow>>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  readonly endpoint?: EndpointOptions;
  readonly handle?: Pick<HandleOptions, 'ordering'>;
  /** Register `onTombstone` (default true). */
  readonly tombstoneHandler?: boolean;
  /** The bus's `history` settings (its table gets a unique name unless given). */
  readonly history?: Record<string, unknown>;
}

const instantOf = (text: string) => {
  const check = checkTimestamp(text);
  if (!check.ok) throw new Error(`bad timestamp ${text}`);
  return check.instant;
};

/** Whether `next` comes after `prev` in the guard's order (instant, then message id). */
export function isNewer(next: { occurredAt: string; id: string }, prev: StateRow): boolean {
  return (
    compareVersions(
      { instant: instantOf(next.occurredAt), messageId: next.id },
      { instant: instantOf(prev.occurredAt), messageId: prev.messageId },
    ) > 0
  );
}

export async function startHarness(kind: StoreKind, options: HarnessOptions = {}): Promise<Harness> {
  const logs: Record<string, unknown>[] = [];
  const logger: Logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const transports = [memoryTransport({ broker: createMemoryBroker() })];
  const historyTable = uniqueTable('history');
  const base = {
    service: 'ordering-test',
    shutdown: { signals: [] as [] },
    history: { enabled: true, table: historyTable, ...options.history },
  };
  let bus: Bus<unknown>;
  let effects: EffectStore<unknown>;
  if (kind === 'memory') {
    bus = createBus(
      { ...base, inbox: { kind: 'memory' } },
      { inbox: memoryInbox(), transports, logger },
    ) as Bus<unknown>;
    const rows = new Map<string, StateRow>();
    effects = {
      read: async (_tx, key) => rows.get(key),
      write: async (_tx, key, row) => void rows.set(key, row),
      all: async () => new Map(rows),
      drop: async () => {},
    };
  } else if (kind === 'sqlite') {
    const path = join(mkdtempSync(join(tmpdir(), 'sluice-ordering-')), 'inbox.db');
    const setup = new Database(path);
    setup.exec(
      'CREATE TABLE state (k TEXT PRIMARY KEY, value REAL, deleted INTEGER NOT NULL, occurred_at TEXT NOT NULL, message_id TEXT NOT NULL)',
    );
    setup.close();
    bus = createBus(
      { ...base, inbox: { kind: 'sqlite', path, table: uniqueTable('inbox') } },
      { inbox: sqliteInbox(), transports, logger },
    ) as Bus<unknown>;
    const fromRow = (r: Record<string, unknown>): StateRow => ({
      value: r.value === null ? null : Number(r.value),
      deleted: Number(r.deleted) === 1,
      occurredAt: String(r.occurred_at),
      messageId: String(r.message_id),
    });
    effects = {
      read: async (tx, key) => {
        const r = (tx as SqliteTransaction).prepare('SELECT * FROM state WHERE k = ?').get(key) as
          | Record<string, unknown>
          | undefined;
        return r ? fromRow(r) : undefined;
      },
      write: async (tx, key, row) => {
        (tx as SqliteTransaction)
          .prepare('INSERT OR REPLACE INTO state (k, value, deleted, occurred_at, message_id) VALUES (?, ?, ?, ?, ?)')
          .run(key, row.value, row.deleted ? 1 : 0, row.occurredAt, row.messageId);
      },
      all: async () => {
        const db = new Database(path, { readonly: true });
        try {
          const rows = db.prepare('SELECT * FROM state').all() as Record<string, unknown>[];
          return new Map(rows.map((r) => [String(r.k), fromRow(r)]));
        } finally {
          db.close();
        }
      },
      drop: async () => {},
    };
  } else {
    const pool = testPool();
    const table = uniqueTable('state');
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${TEST_SCHEMA}`);
    await pool.query(
      `CREATE TABLE ${TEST_SCHEMA}.${table} (k text PRIMARY KEY, value double precision, deleted boolean NOT NULL, occurred_at text NOT NULL, message_id text NOT NULL)`,
    );
    const inboxTable = uniqueTable('inbox');
    bus = createBus(
      {
        ...base,
        inbox: {
          kind: 'postgres',
          connectionString: PG_URL,
          schema: TEST_SCHEMA,
          table: inboxTable,
          lockTimeoutMs: 20_000,
        },
      },
      { inbox: postgresInbox(), transports, logger },
    ) as Bus<unknown>;
    const fromRow = (r: Record<string, unknown>): StateRow => ({
      value: r.value === null ? null : Number(r.value),
      deleted: r.deleted === true,
      occurredAt: String(r.occurred_at),
      messageId: String(r.message_id),
    });
    effects = {
      read: async (tx, key) => {
        const { rows } = await (tx as PostgresTransaction).query(`SELECT * FROM ${TEST_SCHEMA}.${table} WHERE k = $1`, [
          key,
        ]);
        return rows[0] ? fromRow(rows[0]) : undefined;
      },
      write: async (tx, key, row) => {
        await (tx as PostgresTransaction).query(
          `INSERT INTO ${TEST_SCHEMA}.${table} (k, value, deleted, occurred_at, message_id) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (k) DO UPDATE SET value = EXCLUDED.value, deleted = EXCLUDED.deleted, occurred_at = EXCLUDED.occurred_at, message_id = EXCLUDED.message_id`,
          [key, row.value, row.deleted, row.occurredAt, row.messageId],
        );
      },
      all: async () => {
        const { rows } = await pool.query(`SELECT * FROM ${TEST_SCHEMA}.${table}`);
        return new Map(rows.map((r: Record<string, unknown>) => [String(r.k), fromRow(r)]));
      },
      drop: async () => {
        await pool.query(
          `DROP TABLE IF EXISTS ${TEST_SCHEMA}.${table}, ${TEST_SCHEMA}.${inboxTable}, ${TEST_SCHEMA}.${inboxTable}_versions, ${TEST_SCHEMA}.${historyTable}`,
        );
        await pool.end();
      },
    };
  }

  const violations: string[] = [];
  const tombstonesSeen: { key: string | undefined; id: string }[] = [];
  const failOnce = new Set<string>();
  const apply = async (tx: unknown, key: string, event: { id: string; occurredAt: string }, row: StateRow) => {
    const before = await effects.read(tx, key);
    if (before && !isNewer(event, before)) {
      violations.push(`${key}: ${event.id}@${event.occurredAt} after ${before.messageId}@${before.occurredAt}`);
    }
    await effects.write(tx, key, row);
    // After the write: a SQL store's rollback must undo it (and the version); memory has no rollback.
    if (failOnce.delete(event.id)) throw new Error(`injected failure of ${event.id}`);
  };
  const address = 'entities';
  bus
    .endpoint(address, {
      concurrency: 8,
      retry: { kind: 'immediate', retries: 5 },
      ordering: { enabled: true },
      ...options.endpoint,
    })
    .handle(
      EntityUpdated,
      async (data, ctx) => {
        const key = ctx.key ?? '';
        if (kind === 'memory' && failOnce.delete(ctx.messageId))
          throw new Error(`injected failure of ${ctx.messageId}`);
        await apply(
          ctx.tx,
          key,
          { id: ctx.messageId, occurredAt: ctx.envelope.occurredAt },
          {
            value: data.value,
            deleted: false,
            occurredAt: ctx.envelope.occurredAt,
            messageId: ctx.messageId,
          },
        );
      },
      {
        ...options.handle,
        onTombstone:
          options.tombstoneHandler === false
            ? undefined
            : async (key, ctx) => {
                tombstonesSeen.push({ key, id: ctx.messageId });
                if (kind === 'memory' && failOnce.delete(ctx.messageId))
                  throw new Error(`injected failure of ${ctx.messageId}`);
                await apply(
                  ctx.tx,
                  key ?? '',
                  { id: ctx.messageId, occurredAt: ctx.envelope.occurredAt },
                  {
                    value: null,
                    deleted: true,
                    occurredAt: ctx.envelope.occurredAt,
                    messageId: ctx.messageId,
                  },
                );
              },
      },
    );
  await bus.start();

  let baseline = 0;
  const finals = () => {
    const c = bus.health().endpoints[address]?.counters;
    return (c?.completed ?? 0) + (c?.skipped ?? 0) + (c?.deadLettered ?? 0);
  };
  return {
    bus,
    kind,
    logs,
    violations,
    tombstonesSeen,
    failOnce,
    async send(event) {
      const envelope = createEnvelope(
        EntityUpdated.type,
        '/test',
        event.tombstone ? undefined : { value: event.value },
        {
          id: event.id,
          key: event.key,
          occurredAt: event.occurredAt,
          tombstone: event.tombstone,
        },
      );
      await bus.transport.send(address, {
        messageId: event.id,
        body: cloudEventsCodec.encode(envelope),
        headers: {},
        contentType: cloudEventsCodec.contentType,
        key: event.key,
        messageType: EntityUpdated.type,
      });
    },
    async settled(n) {
      baseline += n;
      await waitFor(() => finals() >= baseline, {
        what: `${baseline} final outcomes (have ${finals()})`,
        timeoutMs: 20_000,
      });
      if (finals() !== baseline) throw new Error(`expected ${baseline} final outcomes, got ${finals()}`);
    },
    state: () => effects.all(),
    async stop() {
      await bus.stop();
      await effects.drop();
    },
  };
}

/** `2026-03-01T10:00:00Z` + ms + nanos, written in the given offset (same instant, other text). */
export function stamp(ms: number, nanos: number, offset: 'Z' | '+01:00' | '-05:30' = 'Z'): string {
  const offsetMin = offset === 'Z' ? 0 : offset === '+01:00' ? 60 : -330;
  const local = new Date(Date.parse('2026-03-01T10:00:00Z') + ms + offsetMin * 60_000);
  const fraction = String((ms % 1000) * 1_000_000 + nanos).padStart(9, '0');
  const text = fraction.endsWith('000000') ? fraction.slice(0, 3) : fraction;
  return `${local.toISOString().slice(0, 19)}.${text}${offset}`;
}
