import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import {
  type ClaimOptions,
  type HeldRow,
  type OutboxColumnReaders,
  type OutboxLease,
  type OutboxMessage,
  type OutboxRow,
  type OutboxStats,
  type OutboxStore,
  outboxRowOf,
  type WrittenRow,
} from '../../outbox/outbox-store.js';
import { InvalidOutgoingMessageError } from '../../errors/sluice-error.js';
import { settleWithin } from '../../internal/abort.js';
import { destroyClient } from './pg-errors.js';
import { stageBeforeCommit } from './commit-writes.js';
import { postgresOutboxWriteName } from './postgres-outbox-ddl.js';
import { setUpPostgresOutbox } from './postgres-outbox-setup.js';

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
 * The outbox on PostgreSQL, on the inbox's pool. A write (the table's write function, sent with the
 * transaction's COMMIT) takes `pg_advisory_xact_lock` on each key's hash before it inserts: a
 * second transaction writing the same key waits until the first ends, so `seq` order is commit
 * order per key. It notifies the relays (`pg_notify`, delivered at commit, with this instance's id
 * as payload so that its own relay ignores it).
 */
export class PostgresOutbox implements OutboxStore<pg.PoolClient> {
  readonly #q: string;
  readonly #channel: string;
  readonly #lockClass: number;
  readonly #writeFunction: string;
  readonly #claim: string;
  readonly writesAtCommit = true;

  constructor(private readonly deps: PostgresOutboxDeps) {
    const q = `${deps.schema}.${deps.table}`;
    this.#q = q;
    const digest = createHash('sha256').update(q).digest();
    this.#channel = `sluice_outbox_${digest.toString('hex').slice(0, 24)}`;
    this.#lockClass = digest.readInt32BE(0);
    this.#writeFunction = postgresOutboxWriteName(deps.schema, deps.table);
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

  /** Checks the database and brings the outbox up to date (see `postgres-outbox-setup.ts`). */
  init(): Promise<void> {
    return this.deps.classified(() => setUpPostgresOutbox(this.deps));
  }

  /**
   * Stages the write for the transaction's COMMIT (see `commit-writes.ts`): it runs as the last
   * statement before it, in the same round trip, and this resolves with the rows once that COMMIT
   * came back. The values go inline as escaped literals (a simple query cannot take parameters), the
   * bodies as hex; the function's own statements are planned once per connection.
   */
  write(tx: pg.PoolClient, messages: readonly OutboxMessage[], lease: OutboxLease): Promise<readonly WrittenRow[]> {
    if (messages.length === 0) return Promise.resolve([]);
    // A NUL character inline would break the query's framing (a protocol error, which reads as the
    // database failing): refused here as the message's fault. (The producer refuses it earlier.)
    const text = (v: string | undefined) => {
      if (v === undefined) return 'NULL';
      if (v.includes('\u0000'))
        throw new InvalidOutgoingMessageError(`outbox: a value contains the NUL character (U+0000)`);
      return escapeLiteral(v);
    };
    /** One argument array: a column of the messages, each value an inline literal. */
    const column = (value: (m: OutboxMessage) => string, type = 'text') =>
      `ARRAY[${messages.map(value).join(',')}]::${type}[]`;
    const args = [
      column((m) => text(m.messageId)),
      column((m) => text(m.destinationKind)),
      column((m) => text(m.destination)),
      column((m) => text(m.messageType)),
      column((m) => text(m.key)),
      column((m) => text(JSON.stringify(m.headers)), 'jsonb'),
      // Hex digits need no escaping: an E'' literal, whatever standard_conforming_strings says.
      column((m) => `E'\\\\x${m.body.toString('hex')}'`, 'bytea'),
      column((m) => text(m.sourceEndpoint)),
      column((m) => text(m.causationId)),
      String(this.#lockClass),
      text(this.#channel),
      text(lease.owner),
      `${Number(lease.ms)}::double precision`,
    ];
    const sql = `SELECT w_seq, w_attempts, w_after FROM ${this.#writeFunction}(${args.join(', ')})`;
    return stageBeforeCommit(tx, sql).then((rows) =>
      rows.map((r) => ({
        seq: Number(r.w_seq),
        leased: Number(r.w_attempts) === 1,
        after: r.w_after === null || r.w_after === undefined ? undefined : Number(r.w_after),
      })),
    );
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

  async retryAfter(rows: readonly (HeldRow & { delayMs: number })[]): Promise<void> {
    if (rows.length === 0) return;
    await this.deps.classified(() =>
      this.deps.pool.query(
        `UPDATE ${this.#q} AS t SET next_attempt_at = now() + make_interval(secs => d.ms / 1000), leased_by = NULL
         FROM unnest($1::bigint[], $2::double precision[], $3::integer[]) AS d(seq, ms, attempts)
         WHERE t.seq = d.seq AND t.attempts = d.attempts`,
        [rows.map((r) => r.seq), rows.map((r) => r.delayMs), rows.map((r) => r.attempts)],
      ),
    );
  }

  async moveAside(row: HeldRow, reason: string): Promise<void> {
    await this.deps.classified(() =>
      this.deps.pool.query(
        `UPDATE ${this.#q} SET failed_at = now(), failed_reason = $2 WHERE seq = $1 AND attempts = $3`,
        [row.seq, reason, row.attempts],
      ),
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

/** pg returns timestamptz as Date and jsonb parsed. */
const POSTGRES_COLUMNS: OutboxColumnReaders = {
  date: (v) => v as Date,
  headers: (v) => (v ?? {}) as Record<string, string>,
};
const rowOf = (r: Record<string, unknown>): OutboxRow => outboxRowOf(r, POSTGRES_COLUMNS);

const { escapeLiteral } = pg;
