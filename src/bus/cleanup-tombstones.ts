import type { InboxStore } from '../inbox/inbox-store.js';
import type { EndpointRegistration } from './endpoint-builder.js';

/**
 * Deletes expired tombstones (older than each endpoint's `ordering.tombstones.retentionMs`) in
 * batches of `batchSize`, at most `maxRounds` batches per endpoint, for the endpoints that use the
 * ordering guard. Called by the bus's inbox cleanup; returns how many went. After a tombstone is
 * gone, a late event older than it is no longer recognised as stale: keep the retention longer than
 * any redelivery or redrive can take.
 */
export async function cleanupTombstones(
  store: InboxStore<unknown>,
  registrations: Iterable<EndpointRegistration>,
  nowMs: number,
  batchSize: number,
  maxRounds: number,
): Promise<number> {
  let total = 0;
  for (const { name, config, routes } of registrations) {
    if (![...routes.values()].some((r) => r.ordering?.enabled === true)) continue;
    const olderThan = new Date(nowMs - config.ordering.tombstones.retentionMs);
    for (let round = 0; round < maxRounds; round++) {
      const deleted = await store.cleanupTombstones(name, olderThan, batchSize);
      total += deleted;
      if (deleted < batchSize) break;
    }
  }
  return total;
}
