import type { KafkaMessage } from 'kafkajs';
import type { KafkaConsumerDeps } from './kafka-consumer.js';
import { type DeliveryMark, decodeDeliveryMark } from './delivery-mark.js';
import type { PartitionLease } from './kafka-delivery.js';
import { OffsetTracker } from './offset-tracker.js';

/** Per assigned partition: what was fetched, handed out, may be committed, was committed. */
export interface PartitionState extends PartitionLease {
  readonly isRetry: boolean;
  readonly tracker: OffsetTracker;
  /** The mark read from the group's last commit when the partition was assigned. */
  readonly prior: DeliveryMark | undefined;
  readonly priorFrom: number;
  /** The mark this member writes with its commits. */
  mark: DeliveryMark | undefined;
  /** Records up to this offset may be handed out: a mark covering them was written. */
  markedThrough: number;
  /** One past the last offset taken into the buffer: records fetched again below it are skipped. */
  fetchedNext: number;
  /** Chunks of a retry partition waiting for a due time (in order; not in the shared queue). */
  parked: Chunk[];
  committedOffset: number | undefined;
  committedMeta: string | null;
  revoked: boolean;
}

/** Fetched records not handed out yet: `messages[pos..]` of one partition, `bytes` their values' size. */
export interface Chunk {
  readonly state: PartitionState;
  readonly messages: KafkaMessage[];
  pos: number;
  bytes: number;
}

/** The group's committed offset and delivery mark of one partition. */
export interface CommittedMark {
  readonly offset: number;
  readonly mark: DeliveryMark | undefined;
}

/** The map key of a partition. */
export const partitionKeyOf = (topic: string, partition: number) => `${partition}:${topic}`;

/**
 * Reads the group's committed offsets and delivery marks of one topic's partitions. Without them a
 * re-read record counts as a first delivery: `deliveryCount` is then a lower bound.
 */
export async function loadDeliveryMarks(
  { admin, topics, logger }: Pick<KafkaConsumerDeps, 'admin' | 'topics' | 'logger'>,
  topic: string,
): Promise<Map<number, CommittedMark>> {
  const result = new Map<number, CommittedMark>();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: topics.group, topics: [topic] });
    for (const p of offsets?.partitions ?? []) {
      const offset = Number(p.offset);
      if (offset >= 0) result.set(p.partition, { offset, mark: decodeDeliveryMark(p.metadata) });
    }
  } catch (error) {
    logger.warn({ err: error, topic }, 'could not read the group delivery marks');
  }
  return result;
}

/** The state of a partition on its first batch: tracked from `firstOffset`, the group's mark read. */
export function newPartitionState(
  topic: string,
  partition: number,
  firstOffset: number,
  committed: CommittedMark | undefined,
  isRetry: boolean,
): PartitionState {
  return {
    topic,
    partition,
    isRetry,
    tracker: new OffsetTracker(firstOffset),
    prior: committed?.mark,
    priorFrom: committed?.offset ?? 0,
    mark: undefined,
    markedThrough: -1,
    fetchedNext: firstOffset,
    parked: [],
    committedOffset: committed?.offset,
    committedMeta: null,
    revoked: false,
  };
}
