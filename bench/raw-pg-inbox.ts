// The raw `pg` baseline of the inbox benchmarks: claim + effect insert in one transaction per
// message, `concurrency` connections, no Sluice. Shared by bench/inbox.ts and bench/history.ts.
import pg from 'pg';
import { cloudEventsCodec, type Envelope } from '../src/index.js';

export interface RawInboxTables {
  /** A table with the inbox's columns, `(endpoint, message_id)` its primary key. */
  readonly inbox: string;
  /** `(message_id text, account text, amount numeric)`. */
  readonly effects: string;
}

/** Runs every envelope through claim + effect; returns messages per second. */
export async function rawInbox(
  batch: readonly Envelope<{ account: string; amount: number }>[],
  options: { readonly url: string; readonly concurrency: number; readonly tables: RawInboxTables },
): Promise<number> {
  const { url, concurrency, tables } = options;
  const pool = new pg.Pool({ connectionString: url, max: concurrency });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < batch.length; i = next++) {
        const parsed = JSON.parse(cloudEventsCodec.encode(batch[i] as Envelope).toString()) as {
          id: string;
          type: string;
          subject: string;
          time: string;
          data: { account: string; amount: number };
        };
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const claim = await client.query({
            name: `raw-claim-${tables.inbox}`,
            text: `INSERT INTO ${tables.inbox} (endpoint, message_id, message_type, entity_key, occurred_at, received_at, attempts, envelope)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (endpoint, message_id) DO NOTHING`,
            values: ['bench', parsed.id, parsed.type, parsed.subject, parsed.time, new Date(), 1, null],
          });
          if (claim.rowCount === 1) {
            await client.query({
              name: `raw-effect-${tables.effects}`,
              text: `INSERT INTO ${tables.effects} VALUES ($1, $2, $3)`,
              values: [parsed.id, parsed.data.account, parsed.data.amount],
            });
          }
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      }
    }),
  );
  const rate = batch.length / ((performance.now() - started) / 1000);
  await pool.end();
  return rate;
}
