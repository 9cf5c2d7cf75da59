import type { HistoryOutcome, LostTo } from './history-record.js';

/** What the plain words of an entry are made of. */
export interface DescribedFacts {
  readonly endpoint: string;
  readonly messageId: string;
  readonly occurredAt: string;
  readonly tombstone: boolean;
  readonly outcome: HistoryOutcome;
  readonly reason: string | null;
  readonly detail: string | null;
  readonly lostTo: LostTo | null;
  readonly inDeadLetterQueue: boolean;
}

/**
 * An entry in plain words, e.g. "skipped: stale — occurred 2026-11-30T10:00:01Z, key already at
 * 2026-11-30T10:00:03Z from message m-17". Pure. Values are quoted as sent: the caller shows the
 * result as text, never as markup.
 */
export function describeEntry(f: DescribedFacts): string {
  switch (f.outcome) {
    case 'applied':
      return f.tombstone
        ? `applied: deleted the entity — occurred ${f.occurredAt}`
        : `applied — occurred ${f.occurredAt}`;
    case 'duplicate':
      return `skipped: duplicate — message ${f.messageId} was processed on ${f.endpoint} before`;
    case 'stale':
      return f.lostTo
        ? `skipped: stale — occurred ${f.occurredAt}, key already at ${f.lostTo.occurredAt} from message ${f.lostTo.messageId}` +
            (f.lostTo.tombstone ? ' (a deletion)' : '')
        : `skipped: stale — occurred ${f.occurredAt}`;
    case 'tombstoned':
      return f.lostTo
        ? `skipped: tombstoned — occurred ${f.occurredAt}, key deleted at ${f.lostTo.occurredAt} by message ${f.lostTo.messageId}`
        : `skipped: tombstoned — occurred ${f.occurredAt}, key deleted`;
    case 'dead-lettered': {
      const base = `dead-lettered: ${f.reason ?? 'unknown reason'}${f.detail ? ` — ${f.detail}` : ''}`;
      return f.inDeadLetterQueue ? `${base} (still in the dead-letter queue)` : base;
    }
  }
}

/** The hint for a message still in the dead-letter queue: the gap in the timeline and how to close it. */
export function redriveHint(messageId: string, reason: string | null): string {
  return `${messageId} is dead-lettered: ${reason ?? 'unknown reason'}; redrive it to continue`;
}
