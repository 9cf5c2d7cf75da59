import { type FaultDetails, faultFromHeaders } from '../errors/fault.js';

/** A message sitting in a dead-letter queue, body kept byte for byte. */
export interface DeadLetteredMessage {
  /**
   * Transport id of this dead-lettered copy, unique within the queue (a message dead-lettered twice
   * has two): what redrive and purge select by.
   */
  readonly deadLetterId: string;
  readonly messageId: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly fault: FaultDetails | undefined;
}

/** A dead letter read back from the broker: its fault is the one its headers carry, if any. */
export function deadLettered(
  deadLetterId: string,
  messageId: string,
  body: Buffer,
  headers: Readonly<Record<string, string>>,
  fault = faultFromHeaders(headers),
): DeadLetteredMessage {
  return { deadLetterId, messageId, body, headers, fault };
}

/**
 * Which dead letters a redrive moves: every one waiting when it starts, chosen ids (dead-letter ids
 * or message ids), or the oldest `limit`.
 */
export type RedriveSelection = { all: true } | { ids: readonly string[] } | { limit: number };

export interface RedriveResult {
  readonly moved: number;
  /** Message ids of the moved dead letters. */
  readonly ids: readonly string[];
}

/**
 * Which dead letters a purge removes: chosen ids (dead-letter ids or message ids), or the oldest
 * `limit` (on Kafka: the first `limit` by offset of each partition of the dead-letter topic).
 */
export type PurgeSelection = { ids: readonly string[] } | { limit: number };

export interface PurgeResult {
  readonly removed: number;
  /** Message ids of the removed dead letters. */
  readonly ids: readonly string[];
}

export interface DeadLetterScanOptions {
  /** Dead letters per page (default 100). */
  readonly pageSize?: number;
  /** Stop after this many (default: at the end of the queue). */
  readonly max?: number;
}

/**
 * The dead-letter queue of one endpoint. Redrive moves messages back to the endpoint's address with
 * the attempt count reset and `sluice-redriven-at` / `sluice-redrive-reason` stamped; the copy is
 * on the endpoint before the dead letter is removed (a crash can duplicate, never lose).
 *
 * A transport only reads, moves and removes: which dead letters to select (groups, filters) is
 * decided in `src/dead-letters/`, which hands the transport ids.
 */
export interface DeadLetterQueue {
  /** Up to `limit` dead letters, oldest first, without locking or removing them. */
  peek(limit?: number): Promise<DeadLetteredMessage[]>;
  /**
   * Reads the queue oldest first, a page at a time, without removing anything; ends at the end of
   * the queue or after `max` (a dead letter added during the scan may or may not be in it).
   * Breaking out of the loop ends the scan and lets go of what it holds. What the scan holds may be invisible to a concurrent
   * redrive or purge of the same queue on brokers that lock to read (RabbitMQ).
   */
  scan(options?: DeadLetterScanOptions): AsyncIterable<readonly DeadLetteredMessage[]>;
  /** How many dead letters are waiting. */
  count(): Promise<number>;
  redrive(selection: RedriveSelection, reason: string): Promise<RedriveResult>;
  /**
   * Removes dead letters for good (no copy anywhere). Ids not found are ignored (already redriven or
   * purged). Looks at no more dead letters than were waiting when it started.
   */
  purge(selection: PurgeSelection): Promise<PurgeResult>;
}

/** A scan of dead letters read all at once (a snapshot, or a window of records), in pages. */
export async function* scanPages<T>(
  all: readonly T[],
  options: DeadLetterScanOptions = {},
): AsyncGenerator<readonly T[]> {
  const size = Math.max(1, options.pageSize ?? 100);
  const end = Math.min(all.length, options.max ?? all.length);
  for (let i = 0; i < end; i += size) yield all.slice(i, Math.min(end, i + size));
}

/** `peek` for a queue that reads in pages anyway: the dead letters a scan of at most `limit` finds. */
export async function peekByScan(pages: AsyncIterable<readonly DeadLetteredMessage[]>): Promise<DeadLetteredMessage[]> {
  const found: DeadLetteredMessage[] = [];
  for await (const page of pages) found.push(...page);
  return found;
}
