import type { DeadLetteredMessage, PurgeSelection, RedriveSelection } from './dead-letter-queue.js';

/** What a redrive or purge decides about each dead letter it reads, oldest first. */
export interface DeadLetterPlan {
  /** Chosen ids (dead-letter ids or message ids); undefined for `all` and `limit`. */
  readonly ids: ReadonlySet<string> | undefined;
  /** Most dead letters to choose (`limit`; else unbounded). */
  readonly limit: number;
  /** Whether this dead letter is chosen, given how many were chosen before it. */
  wants(dead: Pick<DeadLetteredMessage, 'deadLetterId' | 'messageId'>, chosenSoFar: number): boolean;
  /**
   * A reader going through the queue may stop: `limit` chosen, or as many as there are ids (a
   * message dead-lettered twice matches one id twice; a reader that has every dead letter at hand
   * chooses both).
   */
  done(chosenSoFar: number): boolean;
}

/**
 * Decodes a redrive or purge selection once, for every transport: all, chosen ids (a dead letter
 * matches by its dead-letter id or its message id; ids not found are ignored), or the oldest `limit`.
 */
export function planSelection(selection: RedriveSelection | PurgeSelection): DeadLetterPlan {
  const ids = 'ids' in selection ? new Set(selection.ids) : undefined;
  const limit = 'limit' in selection ? Math.max(0, selection.limit) : Number.POSITIVE_INFINITY;
  const enough = ids !== undefined ? ids.size : limit;
  return {
    ids,
    limit,
    wants: (dead, chosenSoFar) =>
      chosenSoFar < limit && (ids === undefined || ids.has(dead.deadLetterId) || ids.has(dead.messageId)),
    done: (chosenSoFar) => chosenSoFar >= enough,
  };
}

/**
 * Chooses from dead letters read oldest first; returns the chosen and the others, each in order.
 * For a queue held in memory, or records read in one pass (Kafka).
 */
export function choose<T>(
  entries: readonly T[],
  selection: RedriveSelection | PurgeSelection,
  identify: (entry: T) => Pick<DeadLetteredMessage, 'deadLetterId' | 'messageId'>,
): { chosen: T[]; kept: T[] } {
  const plan = planSelection(selection);
  const chosen: T[] = [];
  const kept: T[] = [];
  for (const entry of entries) (plan.wants(identify(entry), chosen.length) ? chosen : kept).push(entry);
  return { chosen, kept };
}

/** One walk through the head of a queue that locks what it hands out (RabbitMQ, Service Bus). */
export interface HeadWalk<M, D extends Pick<DeadLetteredMessage, 'deadLetterId' | 'messageId'>> {
  readonly plan: DeadLetterPlan;
  /** Most dead letters to look at: those waiting when the operation started (or its `limit`). */
  readonly bound: number;
  /** Takes up to `max` more from the head, locked; none when the queue has nothing ready. */
  take(max: number): Promise<readonly M[]>;
  read(message: M): D;
  /** A chosen one: the adapter moves or removes it (awaited; its message id is already in the list). */
  chosen(message: M, dead: D): unknown;
  /** One not chosen: the adapter keeps holding it, and hands it back when the walk is over. */
  skipped(message: M): void;
}

/**
 * Takes dead letters from the head of the queue, no more than `bound`, until the plan has chosen
 * enough, handing each to `chosen` or `skipped`; resolves with `ids` (the chosen ones' message ids,
 * in order), which holds those chosen so far when it rejects.
 */
export async function walkHead<M, D extends Pick<DeadLetteredMessage, 'deadLetterId' | 'messageId'>>(
  walk: HeadWalk<M, D>,
  ids: string[] = [],
): Promise<string[]> {
  for (let seen = 0; seen < walk.bound && !walk.plan.done(ids.length); ) {
    const batch = await walk.take(walk.bound - seen);
    if (batch.length === 0) break;
    for (const message of batch) {
      seen++;
      const dead = walk.read(message);
      if (!walk.plan.wants(dead, ids.length)) {
        walk.skipped(message);
        continue;
      }
      ids.push(dead.messageId);
      await walk.chosen(message, dead);
    }
  }
  return ids;
}
