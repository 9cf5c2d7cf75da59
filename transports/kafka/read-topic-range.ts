import { randomUUID } from 'node:crypto';
import type { KafkaMessage } from 'kafkajs';
import { createDeferred, withTimeout } from '../../src/transport-core/index.js';
import type { KafkaClient } from './kafka-client.js';

/** A record read back from a topic, with its partition. */
export interface RangeRecord {
  readonly partition: number;
  readonly message: KafkaMessage;
}

export interface ReadTopicRangeOptions {
  /** The group to read as; a throwaway group when omitted. */
  readonly groupId?: string;
  /**
   * Runs while the reader is still the group's member, with the records read: `commit` stores the
   * group's offsets (how redrive removes dead letters).
   */
  readonly whileMember?: (
    records: RangeRecord[],
    commit: (offsets: Map<number, number>) => Promise<void>,
  ) => Promise<void>;
  /** Per partition: read offsets `from` (inclusive) to `to` (exclusive). */
  readonly ranges: ReadonlyMap<number, { from: number; to: number }>;
}

/** How long one read may take (a group join, then the fetches). */
const READ_TIMEOUT_MS = 60_000;

/**
 * Reads fixed offset ranges of one topic through a consumer group (kafkajs has no group-less
 * consumer), committing nothing unless `whileMember` does. Costs one group join: on brokers with the
 * default `group.initial.rebalance.delay.ms` (3 s) that is the floor of every call. Rejects on timeout.
 */
export async function readTopicRange(
  { kafka, config }: Pick<KafkaClient, 'kafka' | 'config'>,
  topic: string,
  options: ReadTopicRangeOptions,
): Promise<RangeRecord[]> {
  const pending = new Map<number, { from: number; to: number }>();
  for (const [p, r] of options.ranges) if (r.to > r.from) pending.set(p, r);
  if (pending.size === 0) return [];
  const out: RangeRecord[] = [];
  const consumer = kafka.consumer({
    groupId: options.groupId ?? `sluice-reader-${randomUUID()}`,
    maxWaitTimeInMs: config.maxWaitTimeMs,
    allowAutoTopicCreation: false,
  });
  const finished = createDeferred<void>();
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        const range = pending.get(batch.partition);
        if (!range) return;
        for (const message of batch.messages) {
          const offset = Number(message.offset);
          resolveOffset(message.offset);
          if (offset < range.from) continue;
          if (offset >= range.to) break;
          out.push({ partition: batch.partition, message });
        }
        if (Number(batch.lastOffset()) >= range.to - 1) pending.delete(batch.partition);
        if (pending.size === 0) finished.resolve();
      },
    });
    for (const [partition, range] of pending) consumer.seek({ topic, partition, offset: String(range.from) });
    const timedOut = () => new Error(`reading ${topic} timed out after ${READ_TIMEOUT_MS} ms`);
    await withTimeout(finished.promise, READ_TIMEOUT_MS, timedOut);
    out.sort(byPosition);
    await options.whileMember?.(out, async (offsets) => {
      const list = [...offsets].map(([partition, offset]) => ({ topic, partition, offset: String(offset) }));
      if (list.length > 0) await consumer.commitOffsets(list);
    });
  } finally {
    await consumer.disconnect().catch(() => {});
  }
  return out.sort(byPosition);
}

function byPosition(a: RangeRecord, b: RangeRecord): number {
  return a.partition - b.partition || Number(a.message.offset) - Number(b.message.offset);
}
