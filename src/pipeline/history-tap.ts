import type { AttemptContext } from './context.js';
import type { Outcome } from './outcome.js';

/**
 * What the inbox stage asks of the history, per endpoint: the row of an outcome decided inside the
 * message's inbox transaction (written with it, rolled back with it), and the row of a duplicate
 * (written inside the claim's transaction). The port of `src/history/` (ranked above the pipeline:
 * `HistoryRuntime.tapFor` implements it); the rows are the history's, passed along unread.
 */
export interface InboxHistoryTap<Row = unknown> {
  /** The duplicate hook of the message's inbox entry; `undefined` when the message has no key. */
  duplicate(ctx: AttemptContext): ((tx: unknown) => Promise<void>) | undefined;
  /** The row of `outcome` when it is final (applied, or a skip the guard decided) and the message has a key. */
  rowOf(ctx: AttemptContext, outcome: Outcome): Row | undefined;
  /** Writes one row inside `tx`. */
  write(tx: unknown, row: Row): Promise<void>;
  /** Writes rows inside `tx`, in one statement where the dialect allows (a batch handler's). */
  writeMany(tx: unknown, rows: readonly Row[]): Promise<void>;
}
