import type { InboxEntry, InboxResult, InboxWork } from '../inbox-store.js';
import { TransactionRolledBackError } from '../../errors/sluice-error.js';
import { dropStaged, stagedCount } from './commit-writes.js';
import { type PostgresTransaction, runWork, type Transact } from './postgres-pool.js';

const LOCK_NOT_AVAILABLE = '55P03';

/**
 * The PostgreSQL inbox's claim and commit: one transaction per message (`runOnce`) or per group
 * (`runBatch`), the claim an `INSERT … ON CONFLICT DO NOTHING` of (endpoint, message id), the
 * handler's statements on the same client, the outcome recorded, COMMIT; and the savepoints that
 * isolate one member of a group.
 */
export class PostgresClaims {
  readonly #transaction: Transact;
  readonly #qualified: string;
  readonly #claim: string;
  readonly #record: string;

  /** `qualified`: the inbox table with its schema. */
  constructor(transaction: Transact, qualified: string) {
    this.#transaction = transaction;
    this.#qualified = qualified;
    this.#claim = `INSERT INTO ${this.#qualified}
      (endpoint, message_id, message_type, entity_key, occurred_at, received_at, attempts, envelope)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (endpoint, message_id) DO NOTHING`;
    this.#record = `UPDATE ${this.#qualified} SET outcome = $3 WHERE endpoint = $1 AND message_id = $2`;
  }

  async runOnce<R>(
    entry: InboxEntry,
    work: (tx: PostgresTransaction) => Promise<InboxWork<R>>,
  ): Promise<InboxResult<R>> {
    // Only the claim waiting behind another consumer means "busy"; a lock timeout inside the
    // handler's own statements is the handler's failure, for the retry policy to judge.
    let claiming = true;
    try {
      return await this.#transaction(async (client): Promise<InboxResult<R>> => {
        const claimed = await client.query({
          name: `sluice-claim-${this.#qualified}`,
          text: this.#claim,
          values: [
            entry.endpoint,
            entry.messageId,
            entry.messageType,
            entry.key ?? null,
            entry.occurredAt,
            entry.receivedAt,
            entry.attempts,
            entry.envelopeJson ?? null,
          ],
        });
        claiming = false;
        // Nothing was written: the transaction ends without effect.
        if (claimed.rowCount === 0) {
          await entry.duplicate?.(client);
          return { status: 'duplicate' };
        }
        const done = await runWork(() => work(client));
        if (done.recordAs !== undefined && done.recordAs !== 'completed') {
          await client.query(this.#record, [entry.endpoint, entry.messageId, done.recordAs]);
        }
        return { status: 'processed', value: done.result };
      });
    } catch (error) {
      if (claiming && (error as { code?: string }).code === LOCK_NOT_AVAILABLE) return { status: 'busy' };
      throw error;
    }
  }

  async runBatch<R>(
    entries: readonly InboxEntry[],
    work: (tx: PostgresTransaction, fresh: readonly boolean[]) => Promise<readonly (InboxWork<R> | undefined)[]>,
  ): Promise<InboxResult<R>[]> {
    return this.#transaction(async (client) => {
      // One multi-row insert claims the whole batch; RETURNING names the ids that are new.
      const values: unknown[] = [];
      const rows: string[] = [];
      for (const e of entries) {
        const b = values.length;
        rows.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}, $${b + 8})`);
        values.push(
          e.endpoint,
          e.messageId,
          e.messageType,
          e.key ?? null,
          e.occurredAt,
          e.receivedAt,
          e.attempts,
          e.envelopeJson ?? null,
        );
      }
      const claimed = await client.query(
        `INSERT INTO ${this.#qualified}
             (endpoint, message_id, message_type, entity_key, occurred_at, received_at, attempts, envelope)
           VALUES ${rows.join(', ')} ON CONFLICT (endpoint, message_id) DO NOTHING RETURNING endpoint, message_id`,
        values,
      );
      const isNew = new Set(
        claimed.rows.map((r: { endpoint: string; message_id: string }) => `${r.endpoint}\u0000${r.message_id}`),
      );
      const fresh = entries.map((e) => isNew.delete(`${e.endpoint}\u0000${e.messageId}`));
      const done = await runWork(() => work(client, fresh));
      const failed = entries.filter((_, i) => fresh[i] && !done[i]);
      if (failed.length > 0) {
        await client.query(`DELETE FROM ${this.#qualified} WHERE endpoint = $1 AND message_id = ANY($2)`, [
          failed[0]?.endpoint,
          failed.map((e) => e.messageId),
        ]);
      }
      const results: InboxResult<R>[] = [];
      for (let i = 0; i < entries.length; i++) {
        const d = done[i];
        const entry = entries[i] as InboxEntry;
        if (!fresh[i] || !d) {
          results.push({ status: 'duplicate' });
          continue;
        }
        if (d.recordAs !== undefined && d.recordAs !== 'completed') {
          await client.query(this.#record, [entry.endpoint, entry.messageId, d.recordAs]);
        }
        results.push({ status: 'processed', value: d.result });
      }
      return results;
    });
  }

  async withSavepoint<R>(tx: PostgresTransaction, fn: () => Promise<R>): Promise<R> {
    await tx.query('SAVEPOINT sluice_item');
    // What the member staged for the COMMIT (its outbox write) is rolled back with its savepoint.
    const staged = stagedCount(tx);
    try {
      const result = await fn();
      // On an aborted transaction (a statement failed and fn went on) the release fails: then fn's
      // statements are rolled back below and fn counts as failed, alone.
      const released = await tx.query('RELEASE SAVEPOINT sluice_item');
      if (released.command !== 'RELEASE') {
        throw new TransactionRolledBackError(
          `the savepoint was not released (PostgreSQL answered ${released.command})`,
        );
      }
      return result;
    } catch (error) {
      dropStaged(tx, staged);
      await tx.query('ROLLBACK TO SAVEPOINT sluice_item');
      throw error;
    }
  }
}
