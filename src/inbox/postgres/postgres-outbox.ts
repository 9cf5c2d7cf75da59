import { missingRelations } from './postgres-inbox-ddl.js';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import {
  type ClaimOptions,
  type OutboxColumnReaders,
  type OutboxLease,
  type OutboxMessage,
  type OutboxRow,
  type OutboxStats,
  type OutboxStore,
  outboxRowOf,
  type WrittenRow,
} from '../../outbox/outbox-store.js';
import { settleWithin } from '../../internal/abort.js';
import { destroyClient } from './pg-errors.js';
import { postgresOutboxDdl, postgresOutboxRelations } from './postgres-outbox-ddl.js';

/** What the PostgreSQL inbox lends its outbox: its pool, its transactions, its error classification. */
export interface PostgresOutboxDeps {
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly table: string;
  readonly instanceId: string;
  readonly createTables: boolean;
  readonly logger: Logger;
  /** Runs one store operation; a database failure becomes a `DependencyError`. */
  readonly classified: <T>(operation: () => Promise<T>) => Promise<T>;
  /** Runs DDL under the inbox's start-up advisory lock, in one transaction. */
  readonly ddl: (text: string) => Promise<void>;
  /** A new client (not from the pool) for LISTEN. */
  readonly listenClient: () => pg.Client;
}

/** Pauses between reconnections of the LISTEN connection. */
const LISTEN_RETRY_MS = { initial: 500, max: 30_000 } as const;
const LISTEN_CLOSE_MS = 500;

/**
 * The outbox on PostgreSQL, on the inbox's pool. A write takes `pg_advisory_xact_lock` on each key's
 * hash (sorted, so two writers never deadlock on them) before it inserts: a second transaction
 * writing the same key waits until the first ends, so `seq` order is commit order per key. The same
 * statement that inserts notifies the relays (`pg_notify`, delivered at commit, with this
 * instance's id as payload so that its own relay ignores it).
 */
export class PostgresOutbox implements OutboxStore<pg.PoolClient> {
  readonly #q: string;
  readonly #channel: string;
  readonly #lockClass: number;
  readonly #write: string;
  readonly #lock: string;
  readonly #claim: string;

  constructor(private readonly deps: PostgresOutboxDeps) {
    const q = `${deps.schema}.${deps.table}`;
    this.#q = q;
    const digest = createHash('sha256').update(q).digest();
    this.#channel = `sluice_outbox_${digest.toString('hex').slice(0, 24)}`;
    this.#lockClass = digest.readInt32BE(0);
    this.#write = writeStatement(q);
    // Sorted, so two writers never deadlock on the keys they share.
    this.#lock = `SELECT count(pg_advisory_xact_lock($1::int4, h)) FROM
        (SELECT DISTINCT hashtext(k) AS h FROM unnest($2::text[]) AS k ORDER BY h) AS s`;
    this.#claim = `UPDATE ${q} AS t
        SET attempts = t.attempts + 1, next_attempt_at = now() + make_interval(secs => $2::double precision / 1000),
            leased_by = NULL
      FROM (
        SELECT o.seq FROM ${q} o
        WHERE o.dispatched_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= now()
          AND (o.entity_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM ${q} p WHERE p.entity_key = o.entity_key AND p.seq < o.seq
              AND p.dispatched_at IS NULL AND p.failed_at IS NULL))
        ORDER BY o.seq LIMIT $1 FOR UPDATE OF o SKIP LOCKED
      ) AS due
      WHERE t.seq = due.seq
      RETURNING t.*`;
  }

  async init(): Promise<void> {
    const { schema, table, pool } = this.deps;
    await this.deps.classified(async () => {
      if (!this.deps.createTables) return;
      const names = postgresOutboxRelations(table).map((name) => `${schema}.${name}`);
      if ((await missingRelations(pool, names)) === 0) return;
      await this.deps.ddl(postgresOutboxDdl(schema, table));
    });
  }

  async write(
    tx: pg.PoolClient,
    messages: readonly OutboxMessage[],
    lease: OutboxLease,
  ): Promise<readonly WrittenRow[]> {
    if (messages.length === 0) return [];
    const keys = [...new Set(messages.flatMap((m) => (m.key === undefined ? [] : [m.key])))];
    const values = [
      messages.map((m) => m.messageId),
      messages.map((m) => m.destinationKind),
      messages.map((m) => m.destination),
      messages.map((m) => m.messageType),
      messages.map((m) => m.key ?? null),
      messages.map((m) => JSON.stringify(m.headers)),
      messages.map((m) => m.body),
      messages.map((m) => m.sourceEndpoint ?? null),
      messages.map((m) => m.causationId ?? null),
      this.#channel,
      lease.owner,
      lease.ms,
    ] as const;
    // The keys' locks first, as a statement of its own: the write's snapshot is then taken after
    // them and sees every earlier committed row of those keys. Both statements are prepared once
    // per connection (named): no parsing or planning per message.
    if (keys.length > 0) {
      await tx.query({ name: `sluice-outbox-lock-${this.#q}`, text: this.#lock, values: [this.#lockClass, keys] });
    }
    const { rows } = await tx.query<{ seq: string; attempts: number }>({
      name: `sluice-outbox-write-${this.#q}`,
      text: this.#write,
      values: [...values],
    });
    return rows.map((r) => ({ seq: Number(r.seq), leased: Number(r.attempts) === 1 }));
  }

  claim(options: ClaimOptions): Promise<OutboxRow[]> {
    return this.deps.classified(async () => {
      const { rows } = await this.deps.pool.query(this.#claim, [options.limit, options.leaseMs]);
      return rows.map(rowOf).sort((a, b) => a.seq - b.seq);
    });
  }

  async markDispatched(seqs: readonly number[], remove: boolean): Promise<void> {
    if (seqs.length === 0) return;
    await this.deps.classified(() =>
      this.deps.pool.query(
        remove
          ? `DELETE FROM ${this.#q} WHERE seq = ANY($1::bigint[])`
          : `UPDATE ${this.#q} SET dispatched_at = now() WHERE seq = ANY($1::bigint[])`,
        [seqs],
      ),
    );
  }

  async retryAfter(rows: readonly { seq: number; delayMs: number }[]): Promise<void> {
    if (rows.length === 0) return;
    await this.deps.classified(() =>
      this.deps.pool.query(
        `UPDATE ${this.#q} AS t SET next_attempt_at = now() + make_interval(secs => d.ms / 1000), leased_by = NULL
         FROM unnest($1::bigint[], $2::double precision[]) AS d(seq, ms) WHERE t.seq = d.seq`,
        [rows.map((r) => r.seq), rows.map((r) => r.delayMs)],
      ),
    );
  }

  async moveAside(seq: number, reason: string): Promise<void> {
    await this.deps.classified(() =>
      this.deps.pool.query(`UPDATE ${this.#q} SET failed_at = now(), failed_reason = $2 WHERE seq = $1`, [seq, reason]),
    );
  }

  stats(): Promise<OutboxStats> {
    return this.deps.classified(async () => {
      const { rows } = await this.deps.pool.query(
        `SELECT
           (SELECT count(*)::int FROM ${this.#q} WHERE dispatched_at IS NULL AND failed_at IS NULL) AS depth,
           (SELECT created_at FROM ${this.#q} WHERE dispatched_at IS NULL AND failed_at IS NULL ORDER BY seq LIMIT 1) AS oldest,
           (SELECT count(*)::int FROM ${this.#q} WHERE failed_at IS NOT NULL) AS moved`,
      );
      const row = rows[0] as { depth: number; oldest: Date | null; moved: number };
      return { depth: row.depth, oldestCreatedAt: row.oldest ?? undefined, movedAside: row.moved };
    });
  }

  cleanup(olderThan: Date, limit: number): Promise<number> {
    return this.deps.classified(async () => {
      const result = await this.deps.pool.query(
        `DELETE FROM ${this.#q} WHERE seq IN
           (SELECT seq FROM ${this.#q} WHERE dispatched_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [olderThan, limit],
      );
      return result.rowCount ?? 0;
    });
  }

  rows(limit: number): Promise<OutboxRow[]> {
    return this.deps.classified(async () => {
      const { rows } = await this.deps.pool.query(`SELECT * FROM ${this.#q} ORDER BY seq LIMIT $1`, [limit]);
      return rows.map(rowOf);
    });
  }

  /**
   * LISTENs on a connection of its own. That connection's errors are handled here (an unhandled
   * `'error'` of a pg client kills the process): it is closed and opened again with backoff, and
   * every (re)connection wakes the relay once, for what was committed while nobody listened.
   */
  async listen(onWake: () => void): Promise<{ close(): Promise<void> }> {
    let closed = false;
    let client: pg.Client | undefined;
    let timer: NodeJS.Timeout | undefined;
    let failures = 0;
    const connect = async (): Promise<void> => {
      if (closed) return;
      const c = this.deps.listenClient();
      client = c;
      let dropped = false;
      const drop = (error?: Error) => {
        if (dropped) return;
        dropped = true;
        if (client === c) client = undefined;
        destroyClient(c);
        if (closed) return;
        failures++;
        const wait = Math.min(LISTEN_RETRY_MS.max, LISTEN_RETRY_MS.initial * 2 ** Math.min(failures - 1, 10));
        this.deps.logger.warn({ err: error, retryInMs: wait }, 'outbox LISTEN connection lost; reconnecting');
        timer = setTimeout(() => void connect(), wait);
        timer.unref();
      };
      c.on('error', drop);
      c.on('end', () => drop());
      c.on('notification', (n) => {
        if (n.payload !== this.deps.instanceId) onWake();
      });
      try {
        await c.connect();
        await c.query(`LISTEN ${this.#channel}`);
        failures = 0;
        onWake();
      } catch (error) {
        drop(error as Error);
      }
    };
    await connect();
    return {
      close: async () => {
        closed = true;
        clearTimeout(timer);
        const c = client;
        client = undefined;
        if (!c) return;
        if ((await settleWithin(c.end(), LISTEN_CLOSE_MS)) === 'timeout') destroyClient(c);
      },
    };
  }
}

/**
 * The write: a row is leased to the writer (see OutboxStore.write) when it has no key, or every
 * earlier undispatched row of its key is leased to the same writer, and that lease runs. It runs after the
 * keys' locks were taken, as a statement of its own: its snapshot then sees every earlier committed
 * row of them. Its twelve parameters are the messages' columns as arrays, the channel, this
 * instance's id and the lease (ms). Leases run from the write (`clock_timestamp()`), not from the
 * transaction's start (`now()`): a long handler must not write rows whose lease is already over.
 */
function writeStatement(q: string): string {
  const p = Array.from({ length: 12 }, (_, i) => `$${i + 1}`);
  return `WITH m AS (
        SELECT u.* FROM unnest(${p[0]}::text[], ${p[1]}::text[], ${p[2]}::text[], ${p[3]}::text[], ${p[4]}::text[], ${p[5]}::jsonb[], ${p[6]}::bytea[], ${p[7]}::text[], ${p[8]}::text[])
          WITH ORDINALITY AS u(message_id, destination_kind, destination, message_type, entity_key, headers, body, source_endpoint, causation_id, ord)
      ),
      l AS (
        SELECT m.*, ${p[11]}::double precision > 0 AND (m.entity_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM ${q} p WHERE p.entity_key = m.entity_key AND p.dispatched_at IS NULL AND p.failed_at IS NULL
            AND NOT (p.leased_by IS NOT DISTINCT FROM ${p[10]}::text AND p.next_attempt_at > clock_timestamp()))) AS leased
        FROM m
      ),
      ins AS (
        INSERT INTO ${q} (message_id, destination_kind, destination, message_type, entity_key, headers, body, source_endpoint,
                          causation_id, attempts, next_attempt_at, leased_by)
        SELECT message_id, destination_kind, destination, message_type, entity_key, headers, body, source_endpoint, causation_id,
               CASE WHEN leased THEN 1 ELSE 0 END,
               CASE WHEN leased THEN clock_timestamp() + make_interval(secs => ${p[11]}::double precision / 1000) ELSE now() END,
               CASE WHEN leased THEN ${p[10]}::text END
        FROM l ORDER BY ord
        RETURNING seq, attempts),
      -- Relays need a wake-up only for rows they may take now: leased rows are the writer's.
      n AS (SELECT pg_notify(${p[9]}, ${p[10]}) WHERE EXISTS (SELECT 1 FROM l WHERE NOT l.leased))
      SELECT ins.seq, ins.attempts, (SELECT count(*) FROM n) AS notified FROM ins ORDER BY ins.seq`;
}

/** pg returns timestamptz as Date and jsonb parsed. */
const POSTGRES_COLUMNS: OutboxColumnReaders = {
  date: (v) => v as Date,
  headers: (v) => (v ?? {}) as Record<string, string>,
};
const rowOf = (r: Record<string, unknown>): OutboxRow => outboxRowOf(r, POSTGRES_COLUMNS);
