import { z } from 'zod';
import { InboxCommonConfigShape, SqlIdentifierSchema } from '../inbox-store.js';

/** The settings of the SQLite inbox (`inbox` in the bus configuration); see docs/inbox.md. */
export const SqliteInboxConfigSchema = z.strictObject({
  kind: z.literal('sqlite'),
  /** The database file; created with its directory if missing. `:memory:` for a throwaway one. */
  path: z.string().min(1).default('.sluice/inbox.db'),
  table: SqlIdentifierSchema.default('sluice_inbox'),
  /**
   * How long a transaction waits for another connection's or process's write lock. It waits
   * without blocking the event loop (short tries with pauses in between); past it the attempt fails
   * as a dependency failure (the message goes back, no attempt spent).
   */
  busyTimeoutMs: z.number().int().min(0).max(600_000).default(5_000),
  /** `normal` survives a process crash (WAL); `full` also survives power loss, slower. */
  synchronous: z.enum(['normal', 'full']).default('normal'),
  ...InboxCommonConfigShape,
});
export type SqliteInboxConfig = z.infer<typeof SqliteInboxConfigSchema>;
