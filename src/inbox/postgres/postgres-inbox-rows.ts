import type pg from 'pg';
import { type InboxRow, inboxRowOf } from '../inbox-store.js';
import type { Classify } from './postgres-pool.js';

/** The processed rows of the PostgreSQL inbox outside a message's transaction: one looked up, old ones deleted. */
export class PostgresInboxRows {
  readonly #pool: pg.Pool;
  readonly #qualified: string;
  readonly #classified: Classify;

  /** `qualified`: the inbox table with its schema. */
  constructor(pool: pg.Pool, qualified: string, classified: Classify) {
    this.#pool = pool;
    this.#qualified = qualified;
    this.#classified = classified;
  }

  async cleanup(olderThan: Date, limit: number): Promise<number> {
    return this.#classified(() => this.#cleanup(olderThan, limit));
  }

  async #cleanup(olderThan: Date, limit: number): Promise<number> {
    const result = await this.#pool.query(
      `DELETE FROM ${this.#qualified} WHERE ctid IN
         (SELECT ctid FROM ${this.#qualified} WHERE processed_at < $1 LIMIT $2)`,
      [olderThan, limit],
    );
    return result.rowCount ?? 0;
  }

  async find(endpoint: string, messageId: string): Promise<InboxRow | undefined> {
    const { rows } = await this.#classified(() =>
      this.#pool.query(
        `SELECT endpoint, message_id, message_type, entity_key, occurred_at, received_at, processed_at, outcome, attempts, envelope
       FROM ${this.#qualified} WHERE endpoint = $1 AND message_id = $2`,
        [endpoint, messageId],
      ),
    );
    const row = rows[0] as Record<string, unknown> | undefined;
    // pg returns timestamptz as Date and jsonb parsed.
    return row ? inboxRowOf(row, { date: (v) => v as Date, envelope: (v) => v }) : undefined;
  }
}
