import type { DeadLetteredMessage, DeadLetterQueue } from '../transport-core/dead-letter-queue.js';
import { type DeadLetterFilter, matchesFilter } from './dead-letter-filter.js';
import { type DeadLetterSummary, summaryOf } from './dead-letter-view.js';
import { failureGroupOf } from './failure-group.js';

/** Dead letters read per page of a scan. */
const SCAN_PAGE = 200;

/** A page of a filtered list, and where the next one starts. */
export interface DeadLetterPage {
  readonly items: readonly DeadLetterSummary[];
  /** Pass back as `cursor` for the next page; absent on the last one. */
  readonly next?: string;
  /** The scan stopped at the scan limit: dead letters past it were not looked at. */
  readonly truncated: boolean;
}

/** One failure group with its count and when its failures happened. */
export interface FailureGroupCount {
  readonly id: string;
  readonly reason: string;
  readonly errorType: string;
  readonly text: string;
  readonly count: number;
  readonly firstFailedAt?: string;
  readonly lastFailedAt?: string;
  /** A message type seen in the group (the first). */
  readonly messageType?: string;
}

/** Counts by reason and by failure group, largest first. */
export interface DeadLetterStats {
  /** Dead letters looked at. */
  readonly scanned: number;
  /** Of those, the ones the filter matched (all without a filter). */
  readonly matched: number;
  readonly truncated: boolean;
  readonly reasons: readonly { readonly reason: string; readonly count: number }[];
  readonly groups: readonly FailureGroupCount[];
}

/** What a read may look at. */
export interface ReadLimits {
  /** At most this many dead letters are looked at, oldest first. */
  readonly scanLimit: number;
  readonly signal?: AbortSignal;
}

/**
 * A cursor is the number of dead letters (matching or not) already looked at, in queue order. A
 * page is a view, not a snapshot: when dead letters before the cursor were redriven or purged
 * meanwhile, the next page starts a little further on.
 */
export function encodeCursor(position: number): string {
  return Buffer.from(JSON.stringify({ p: position })).toString('base64url');
}

/** The position in a cursor; undefined when it is not one of ours. */
export function decodeCursor(cursor: string): number | undefined {
  try {
    const p = (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { p?: unknown }).p;
    return typeof p === 'number' && Number.isInteger(p) && p >= 0 ? p : undefined;
  } catch {
    return undefined;
  }
}

/** Scans the queue (up to the scan limit), calling `visit` for each dead letter with its position. */
async function scanLimited(
  dlq: DeadLetterQueue,
  limits: ReadLimits,
  visit: (dead: DeadLetteredMessage, position: number) => boolean | undefined,
): Promise<{ scanned: number; truncated: boolean }> {
  let scanned = 0;
  for await (const page of dlq.scan({ pageSize: SCAN_PAGE, max: limits.scanLimit + 1 })) {
    limits.signal?.throwIfAborted();
    for (const dead of page) {
      if (scanned >= limits.scanLimit) return { scanned, truncated: true };
      const stop = visit(dead, scanned);
      scanned++;
      if (stop) return { scanned, truncated: false };
    }
  }
  return { scanned, truncated: false };
}

/** A page of the dead letters that match `filter`, from `position` on. */
export async function listDeadLetters(
  dlq: DeadLetterQueue,
  filter: DeadLetterFilter,
  page: { readonly position: number; readonly limit: number },
  limits: ReadLimits,
): Promise<DeadLetterPage> {
  const items: DeadLetterSummary[] = [];
  let next: number | undefined;
  const { truncated } = await scanLimited(dlq, limits, (dead, position) => {
    if (position < page.position || !matchesFilter(dead, filter)) return false;
    if (items.length === page.limit) {
      next = position;
      return true;
    }
    items.push(summaryOf(dead));
    return false;
  });
  return { items, ...(next !== undefined ? { next: encodeCursor(next) } : {}), truncated };
}

/**
 * Counts by reason and failure group (ServicePulse's grouping): what an operator sorts a flood by.
 * With a filter, only the dead letters it matches are counted (`matched`).
 */
export async function deadLetterStats(
  dlq: DeadLetterQueue,
  filter: DeadLetterFilter,
  limits: ReadLimits,
): Promise<DeadLetterStats> {
  const reasons = new Map<string, number>();
  const groups = new Map<string, { -readonly [K in keyof FailureGroupCount]: FailureGroupCount[K] }>();
  let matched = 0;
  const { scanned, truncated } = await scanLimited(dlq, limits, (dead) => {
    if (!matchesFilter(dead, filter)) return false;
    matched++;
    const key = failureGroupOf(dead);
    reasons.set(key.reason, (reasons.get(key.reason) ?? 0) + 1);
    const at = dead.fault?.lastFailureAt;
    const group = groups.get(key.id);
    if (group === undefined) {
      groups.set(key.id, {
        ...key,
        count: 1,
        ...(at !== undefined ? { firstFailedAt: at, lastFailedAt: at } : {}),
        ...(dead.fault?.messageType !== undefined ? { messageType: dead.fault.messageType } : {}),
      });
      return false;
    }
    group.count++;
    if (at !== undefined) {
      if (group.firstFailedAt === undefined || at < group.firstFailedAt) group.firstFailedAt = at;
      if (group.lastFailedAt === undefined || at > group.lastFailedAt) group.lastFailedAt = at;
    }
    return false;
  });
  return {
    scanned,
    matched,
    truncated,
    reasons: [...reasons].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count),
    groups: [...groups.values()].sort((a, b) => b.count - a.count),
  };
}

/** The dead letter with this dead-letter id (or, failing that, message id), if it is within the scan limit. */
export async function findDeadLetter(
  dlq: DeadLetterQueue,
  id: string,
  limits: ReadLimits,
): Promise<DeadLetteredMessage | undefined> {
  let found: DeadLetteredMessage | undefined;
  await scanLimited(dlq, limits, (dead) => {
    if (dead.deadLetterId === id) {
      found = dead;
      return true;
    }
    if (found === undefined && dead.messageId === id) found = dead;
    return false;
  });
  return found;
}

/**
 * The dead-letter ids of every dead letter that matches `filter` (up to the scan limit), in queue
 * order: what redrive and purge of a group hand the transport.
 */
export async function selectDeadLetters(
  dlq: DeadLetterQueue,
  filter: DeadLetterFilter,
  limits: ReadLimits,
): Promise<{ ids: string[]; truncated: boolean }> {
  const ids: string[] = [];
  const { truncated } = await scanLimited(dlq, limits, (dead) => {
    if (matchesFilter(dead, filter)) ids.push(dead.deadLetterId);
    return false;
  });
  return { ids, truncated };
}
