import { z } from 'zod';
import { DeadLetterFilterSchema } from '../dead-letters/dead-letter-filter.js';
import { selectDeadLetters } from '../dead-letters/dead-letter-reads.js';
import type { DeadLetterQueue } from '../transport-core/dead-letter-queue.js';
import type { JobHandle, JobKind } from './job-registry.js';

/** At most this many, the oldest first: a redrive in batches (1,000 now, the rest once they pass). */
const Limit = z.number().int().min(1).max(10_000_000);

/**
 * Which dead letters a redrive or purge takes: all, chosen ids, or those a filter (a group)
 * matches; `all` and `filter` take the oldest `limit` when it is given.
 */
export const DeadLetterSelectionSchema = z.union([
  z.strictObject({ all: z.literal(true), limit: Limit.optional() }),
  z.strictObject({ ids: z.array(z.string().min(1).max(1_000)).min(1).max(1_000) }),
  z.strictObject({ filter: DeadLetterFilterSchema, limit: Limit.optional() }),
]);
export type DeadLetterSelection = z.infer<typeof DeadLetterSelectionSchema>;

const Reason = z.string().trim().min(1).max(500);

export const RedriveRequestSchema = z.strictObject({
  selection: DeadLetterSelectionSchema,
  /** Stamped on each copy (`sluice-redrive-reason`) and logged. */
  reason: Reason,
});

export const PurgeRequestSchema = z.strictObject({
  selection: DeadLetterSelectionSchema,
  /**
   * How many dead letters the caller expects to remove (what it was shown): when the selection
   * finds another number, nothing is removed and the job fails saying both.
   */
  expect: z.number().int().min(0),
  reason: Reason.optional(),
});

/** Dead letters handed to the transport per call: progress and cancellation happen between chunks. */
export const JOB_CHUNK = 500;

/** The selection found another number than the caller confirmed: nothing was removed. */
export class ConfirmationMismatch extends Error {}

export interface DeadLetterJobPlan {
  readonly kind: JobKind;
  readonly selection: DeadLetterSelection;
  readonly reason: string;
  /** For a purge: the count the caller confirmed. */
  readonly expect?: number;
  readonly scanLimit: number;
  readonly chunk?: number;
}

/**
 * The work of a redrive or purge job. The selection becomes a list of dead-letter ids here (a
 * filter by a bounded scan) or a count (`all`: what is waiting when the job starts, so that messages
 * that fail again and come back are not taken twice); the transport then moves or removes them a
 * chunk at a time. The job stops between chunks when cancelled.
 */
export function deadLetterWork(dlq: DeadLetterQueue, plan: DeadLetterJobPlan): (job: JobHandle) => Promise<void> {
  const chunk = plan.chunk ?? JOB_CHUNK;
  const act = async (selection: { ids: string[] } | { limit: number }) => {
    if (plan.kind === 'redrive') return (await dlq.redrive(selection, plan.reason)).moved;
    return (await dlq.purge(selection)).removed;
  };
  const confirm = (found: number) => {
    if (plan.kind === 'purge' && plan.expect !== found) {
      throw new ConfirmationMismatch(
        `expected to remove ${plan.expect}, but the selection holds ${found} now: nothing was removed; look again and confirm the new count`,
      );
    }
  };
  return async (job) => {
    const { selection } = plan;
    if ('all' in selection) {
      const total = Math.min(await dlq.count(), selection.limit ?? Number.POSITIVE_INFINITY);
      confirm(total);
      job.running(total);
      let done = 0;
      while (done < total && !job.signal.aborted) {
        const n = Math.min(chunk, total - done);
        const succeeded = await act({ limit: n });
        done += n;
        // Fewer than asked: the queue ran out (redriven or purged elsewhere meanwhile).
        job.advance({ done: n, succeeded, missing: n - succeeded });
        if (succeeded < n) {
          job.advance({ done: total - done, succeeded: 0, missing: total - done });
          break;
        }
      }
      return;
    }
    let ids: string[];
    if ('ids' in selection) ids = [...new Set(selection.ids)];
    else {
      const selected = await selectDeadLetters(dlq, selection.filter, {
        scanLimit: plan.scanLimit,
        signal: job.signal,
      });
      ids = selection.limit === undefined ? selected.ids : selected.ids.slice(0, selection.limit);
    }
    confirm(ids.length);
    job.running(ids.length);
    for (let i = 0; i < ids.length && !job.signal.aborted; i += chunk) {
      const part = ids.slice(i, i + chunk);
      const succeeded = await act({ ids: part });
      job.advance({ done: part.length, succeeded, missing: part.length - succeeded });
    }
  };
}
