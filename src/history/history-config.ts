import { z } from 'zod';
import { sqlTableName } from '../internal/sql-identifier.js';

/**
 * The history of each key (`history` in the bus configuration; see docs/explain.md): one row per
 * final outcome of a keyed message on an endpoint with an inbox, in the inbox's database.
 */
export const HistoryConfigSchema = z.strictObject({
  /**
   * The default of every endpoint with an inbox; `endpoints.<name>.history` overrides it. Off by
   * default: a row per message costs more than the 10% the project allows for a default
   * (docs/explain.md#cost).
   */
  enabled: z.boolean().default(false),
  /** The history table, in the inbox's database (and schema, on PostgreSQL); created on start. */
  table: sqlTableName('_message_idx').default('sluice_history'),
  /** Rows recorded longer ago than this are deleted, in batches, on the inbox's cleanup interval. */
  retentionMs: z
    .number()
    .int()
    .min(60_000)
    .default(30 * 24 * 3_600_000),
  /** Rows deleted per statement. */
  cleanupBatchSize: z.number().int().min(1).max(100_000).default(1_000),
  /** Keep each event's data (JSON) in its row: off by default; data larger than `maxBytes` is left out. */
  data: z
    .strictObject({
      enabled: z.boolean().default(false),
      maxBytes: z
        .number()
        .int()
        .min(16)
        .max(1024 * 1024)
        .default(4_096),
    })
    .default({ enabled: false, maxBytes: 4_096 }),
  /** Dead letters `explain` looks at per endpoint (oldest first) for the key's messages still there. */
  deadLetterScanLimit: z.number().int().min(0).max(1_000_000).default(10_000),
});
export type HistoryConfig = z.infer<typeof HistoryConfigSchema>;

export const DEFAULT_HISTORY: HistoryConfig = HistoryConfigSchema.parse({});
