import { cleanupTombstones } from './cleanup-tombstones.js';
import type { BusParts } from './bus-parts.js';
import { anyHistory } from './bus-history.js';

/** One cleanup run deletes at most this many batches, then waits for the next interval. */
const MAX_CLEANUP_ROUNDS = 100;

/**
 * Deletes inbox rows older than the retention, in bounded batches (never one long statement), then
 * the ordering guard's expired tombstones and (when an endpoint keeps history) old history rows.
 * Returns how many rows went.
 */
export async function cleanupInbox(parts: BusParts): Promise<number> {
  const inbox = parts.inbox;
  if (!inbox) return 0;
  const olderThan = new Date(parts.clock.now() - inbox.config.retentionMs);
  let total = 0;
  for (let round = 0; round < MAX_CLEANUP_ROUNDS; round++) {
    const deleted = await inbox.store.cleanup(olderThan, inbox.config.cleanupBatchSize);
    total += deleted;
    if (deleted < inbox.config.cleanupBatchSize) break;
  }
  total += await cleanupTombstones(
    inbox.store,
    parts.registrations.values(),
    parts.clock.now(),
    inbox.config.cleanupBatchSize,
    MAX_CLEANUP_ROUNDS,
  );
  // Its table exists only when an endpoint keeps history.
  if (anyHistory(parts)) total += (await parts.history?.cleanup()) ?? 0;
  return total;
}

/**
 * Runs {@link cleanupInbox} every `cleanupIntervalMs` on the bus's clock while `running()` says so.
 * Returns the cancel function (`undefined` without an inbox).
 */
export function scheduleInboxCleanup(
  parts: BusParts,
  cleanup: () => Promise<number>,
  running: () => boolean,
): (() => void) | undefined {
  const inbox = parts.inbox;
  if (!inbox) return undefined;
  let cancel = (): void => {};
  const schedule = (): void => {
    cancel = parts.clock.setTimer(() => {
      cleanup()
        .then((deleted) => {
          if (deleted > 0) parts.logger.info({ deleted }, 'inbox cleanup');
        })
        .catch((error: unknown) => parts.logger.warn({ err: error }, 'inbox cleanup failed'))
        .finally(() => {
          if (running()) schedule();
        });
    }, inbox.config.cleanupIntervalMs);
  };
  schedule();
  return () => cancel();
}
