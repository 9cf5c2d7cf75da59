import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KafkaMessage } from 'kafkajs';
import { createDeferred, errorText, withTimeout } from '../../src/transport-core/index.js';
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

/** How long one read may take in all (group joins, then the fetches). */
const READ_TIMEOUT_MS = 60_000;
/** The pause before a reader whose member crashed joins again. */
const REJOIN_DELAY_MS = 250;

/** Why a read's group member crashed (kafkajs's `run` resolves even when its first join failed). */
class MemberCrashed extends Error {}

/**
 * Reads fixed offset ranges of one topic through a consumer group (kafkajs has no group-less
 * consumer), committing nothing unless `whileMember` does. Costs one group join: on brokers with the
 * default `group.initial.rebalance.delay.ms` (3 s) that is the floor of every call.
 *
 * A member that crashes (its join failed: the coordinator was still loading, the broker did not
 * answer) is disconnected and a new one joins after a short pause, reading on from where the last
 * stopped; every join seeks the partitions still to read, so a member never starts from the group's
 * committed offsets. Rejects when the whole read, joins included, takes longer than 60 s.
 */
export async function readTopicRange(
  { kafka, config }: Pick<KafkaClient, 'kafka' | 'config'>,
  topic: string,
  options: ReadTopicRangeOptions,
): Promise<RangeRecord[]> {
  /** Per partition still to read: the next offset wanted and the end (exclusive). */
  const pending = new Map<number, { next: number; to: number }>();
  for (const [p, r] of options.ranges) if (r.to > r.from) pending.set(p, { next: r.from, to: r.to });
  if (pending.size === 0) return [];
  const out: RangeRecord[] = [];
  const groupId = options.groupId ?? `sluice-reader-${randomUUID()}`;
  const deadline = Date.now() + READ_TIMEOUT_MS;
  const timedOut = () => new Error(`reading ${topic} timed out after ${READ_TIMEOUT_MS} ms`);
  for (;;) {
    const consumer = kafka.consumer({
      groupId,
      maxWaitTimeInMs: config.maxWaitTimeMs,
      allowAutoTopicCreation: false,
    });
    const finished = createDeferred<void>();
    finished.promise.catch(() => {}); // a crash before anyone awaits it is read below
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const [partition, range] of pending) consumer.seek({ topic, partition, offset: String(range.next) });
    });
    consumer.on(consumer.events.CRASH, (event) => {
      finished.reject(
        new MemberCrashed(`reading ${topic}: the group member crashed: ${errorText(event.payload.error)}`),
      );
    });
    try {
      await withTimeout(
        (async () => {
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
                if (offset < range.next) continue;
                if (offset >= range.to) break;
                out.push({ partition: batch.partition, message });
                range.next = offset + 1;
              }
              if (Number(batch.lastOffset()) >= range.to - 1) pending.delete(batch.partition);
              if (pending.size === 0) finished.resolve();
            },
          });
          await finished.promise;
        })(),
        Math.max(0, deadline - Date.now()),
        timedOut,
      );
      out.sort(byPosition);
      await options.whileMember?.(out, async (offsets) => {
        const list = [...offsets].map(([partition, offset]) => ({ topic, partition, offset: String(offset) }));
        if (list.length > 0) await consumer.commitOffsets(list);
      });
      return out;
    } catch (error) {
      if (!(error instanceof MemberCrashed) || Date.now() + REJOIN_DELAY_MS >= deadline) throw error;
    } finally {
      await consumer.disconnect().catch(() => {}); // also cancels kafkajs's own restart of a crashed member
    }
    await sleep(REJOIN_DELAY_MS);
  }
}

function byPosition(a: RangeRecord, b: RangeRecord): number {
  return a.partition - b.partition || Number(a.message.offset) - Number(b.message.offset);
}
