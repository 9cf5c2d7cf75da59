import type { EachBatchPayload, Consumer as KafkajsConsumer, KafkaMessage } from 'kafkajs';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { type Clock, ManualClock, systemClock } from '../../../src/internal/clock.js';
import { ConsumerGate } from '../../../src/transport-core/index.js';
import { KafkaTransportConfigSchema } from '../../../transports/kafka/kafka-config.js';
import type { KafkaDelivery } from '../../../transports/kafka/kafka-delivery.js';
import { KafkaHeader } from '../../../transports/kafka/kafka-header.js';
import { OffsetCommits } from '../../../transports/kafka/offset-commits.js';
import { newPartitionState, type PartitionState, partitionKeyOf } from '../../../transports/kafka/partition-state.js';
import { RecordFeed } from '../../../transports/kafka/record-feed.js';
import { TopicNaming } from '../../../transports/kafka/topic-naming.js';

// The feed between kafkajs's eachBatch and the endpoint, with its one dependency on the group (the
// commit that writes the delivery mark) under the test's control: the write-ahead order cannot be
// held still on a real broker. What the mark means after a crash is tested against the broker in
// test/integration/kafka/crash-recovery.test.ts.

const logger = pino({ level: 'silent' });
const config = KafkaTransportConfigSchema.parse({ kind: 'kafka' });
const naming = new TopicNaming(config);
const topics = naming.endpoint('orders', 'orders', []);

function records(from: number, count: number, valueBytes = 2, headers: KafkaMessage['headers'] = {}): KafkaMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    offset: String(from + i),
    key: Buffer.from(`k${i}`),
    value: Buffer.alloc(valueBytes, 0x20),
    headers: { ...headers },
    timestamp: '0',
    attributes: 0,
  }));
}

/** Records of the retry topic, each carrying the due time before which it must not go out. */
function retryRecords(from: number, count: number, dueAt: number): KafkaMessage[] {
  return records(from, count, 2, { [KafkaHeader.dueAt]: Buffer.from(String(dueAt)) });
}

function payload(
  state: { revoked: boolean },
  messages: KafkaMessage[],
  { topic = topics.input, partition = 0 } = {},
): EachBatchPayload {
  const batch = { topic, partition, messages };
  return {
    batch,
    resolveOffset: () => undefined,
    heartbeat: async () => undefined,
    isRunning: () => !state.revoked,
    isStale: () => false,
  } as unknown as EachBatchPayload;
}

/** Lets promise callbacks and a scheduled pump (a macrotask) run. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A feed whose mark commits wait until the test lets them return (in order, or the n-th started).
 * Partitions of the retry topic are retry partitions, as in the consumer.
 */
function feedWithHeldCommits({
  prefetch = 1_000,
  maxBytesPerPartition = config.maxBytesPerPartition,
  clock = systemClock,
  flushMarks,
}: {
  prefetch?: number;
  maxBytesPerPartition?: number;
  clock?: Clock;
  flushMarks?: () => Promise<void>;
} = {}) {
  const handedOut: number[] = [];
  /** What went out, as `p<partition>:<offset>` (input topic) or `r<partition>:<offset>` (retry topic). */
  const out: string[] = [];
  const commits: (() => void)[] = [];
  const started: (() => void)[] = [];
  const partitions = new Map<string, PartitionState>();
  const gate = new ConsumerGate({ prefetch, clock, logger, what: 'test' });
  const feed = new RecordFeed({
    clock,
    logger,
    config: { ...config, maxBytesPerPartition },
    topics,
    naming,
    callback: (delivery) => {
      const { lease, offset } = delivery as KafkaDelivery;
      handedOut.push(offset);
      out.push(`${lease.topic === topics.retry ? 'r' : 'p'}${lease.partition}:${offset}`);
    },
    owner: { copies: {} as never, held: {} as never, settled: () => undefined },
    gate,
    partitionState: async (topic, p, firstOffset) => {
      const k = partitionKeyOf(topic, p);
      let state = partitions.get(k);
      if (!state) {
        state = newPartitionState(topic, p, firstOffset, undefined, topic === topics.retry);
        partitions.set(k, state);
      }
      return state;
    },
    partition: (k) => partitions.get(k),
    flushMarks:
      flushMarks ??
      (() =>
        new Promise<void>((resolve) => {
          commits.push(resolve);
          started.push(resolve);
        })),
    applyPauses: () => undefined,
    closing: () => false,
  });
  return {
    feed,
    gate,
    handedOut,
    out,
    commits,
    partitions: () => partitions.values(),
    state: (topic: string = topics.input, p = 0) => partitions.get(partitionKeyOf(topic, p)) as PartitionState,
    /** The partition is revoked (and its buffer dropped); a later batch makes its state anew. */
    revoke(): void {
      const k = partitionKeyOf(topics.input, 0);
      const state = partitions.get(k) as PartitionState;
      state.revoked = true;
      feed.dropPartition(state);
      partitions.delete(k);
    },
    /** Lets the oldest commit under way return, then lets the feed's callbacks run. */
    async commit(): Promise<void> {
      commits.shift()?.();
      await turn();
    },
    /** Lets the n-th commit started (0-based, whichever is oldest) return, then lets the feed's callbacks run. */
    async commitOf(n: number): Promise<void> {
      const resolve = started[n];
      const i = resolve === undefined ? -1 : commits.indexOf(resolve);
      if (i < 0) throw new Error(`commit ${n} was not started or has returned`);
      commits.splice(i, 1);
      resolve?.();
      await turn();
    },
  };
}

describe('Kafka record feed: the delivery mark is written ahead, without holding kafkajs up', () => {
  it('returns from eachBatch while the mark commits, and hands records out only after it has', async () => {
    const t = feedWithHeldCommits();
    const revoked = { revoked: false };
    await t.feed.eachBatch(payload(revoked, records(0, 3)));
    // kafkajs may fetch on: the batch is buffered, its mark is on its way, nothing is out yet.
    expect(t.commits).toHaveLength(1);
    expect(t.state().mark).toEqual({ through: 2, count: 1 });
    expect(t.handedOut).toEqual([]);

    // The next fetch arrives before the first mark has returned: it waits behind it, in order.
    await t.feed.eachBatch(payload(revoked, records(3, 2)));
    expect(t.commits).toHaveLength(2);
    expect(t.state().mark).toEqual({ through: 4, count: 1 });
    expect(t.handedOut).toEqual([]);

    await t.commit();
    expect(t.handedOut).toEqual([0, 1, 2]);
    await t.commit();
    expect(t.handedOut).toEqual([0, 1, 2, 3, 4]);
  });

  it('drops a partition revoked while its mark commits: nothing of it goes out when the commit returns', async () => {
    const t = feedWithHeldCommits();
    const revoked = { revoked: false };
    await t.feed.eachBatch(payload(revoked, records(0, 3)));
    t.revoke();
    await t.commit();
    expect(t.handedOut).toEqual([]);
  });

  it('lets a partition assigned again out only on its own mark, not on the one its revoked state sent', async () => {
    const t = feedWithHeldCommits();
    const running = { revoked: false };
    await t.feed.eachBatch(payload(running, records(0, 3)));
    const before = t.state();
    t.revoke();
    // Assigned back: the same records are fetched again, under a new state with its own mark.
    await t.feed.eachBatch(payload(running, records(0, 3)));
    expect(t.state()).not.toBe(before);
    expect(t.commits).toHaveLength(2);
    await t.commit(); // the revoked state's mark
    expect(t.handedOut).toEqual([]);
    await t.commit(); // the new state's mark
    expect(t.handedOut).toEqual([0, 1, 2]);
  });

  it('holds kafkajs while the buffer is full of records whose mark is on its way, and lets it go once they are out and settled', async () => {
    // 1 KiB per fetch: the buffer's limit is 512 bytes of values, and the prefetch 2 records.
    const t = feedWithHeldCommits({ prefetch: 2, maxBytesPerPartition: 1_024 });
    let returned = false;
    const batch = t.feed.eachBatch(payload({ revoked: false }, records(0, 6, 200))).then(() => {
      returned = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(returned).toBe(false); // 6 records, 1,200 bytes: full, and none can go out yet
    expect(t.handedOut).toEqual([]);

    await t.commit();
    expect(t.handedOut).toEqual([0, 1]); // the prefetch
    for (const handed of [2, 4]) {
      // The endpoint settles what it has; the consumer frees the slots and pumps.
      t.gate.settled();
      t.gate.settled();
      t.feed.schedulePump();
      await new Promise((resolve) => setImmediate(resolve));
      expect(t.handedOut).toHaveLength(handed + 2);
    }
    await batch;
    expect(returned).toBe(true);
    expect(t.handedOut).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('hands two interleaved partitions out in fetch order: a chunk whose mark is out holds back everything fetched after it, of either partition', async () => {
    const t = feedWithHeldCommits();
    const running = { revoked: false };
    const p0 = { partition: 0 };
    const p1 = { partition: 1 };
    await t.feed.eachBatch(payload(running, records(0, 2), p0)); // commit 0
    await t.feed.eachBatch(payload(running, records(0, 2), p1)); // commit 1
    await t.feed.eachBatch(payload(running, records(2, 2), p0)); // commit 2
    await t.feed.eachBatch(payload(running, records(2, 2), p1)); // commit 3
    expect(t.commits).toHaveLength(4); // each batch's mark is on its way
    expect(t.state(topics.input, 0).mark).toEqual({ through: 3, count: 1 });
    expect(t.state(topics.input, 1).mark).toEqual({ through: 3, count: 1 });
    expect(t.out).toEqual([]);

    // Partition 1's first mark returns while partition 0's, fetched before it, has not (the
    // consumer's commits run one at a time, so they return in order; a later mark returning first is
    // where the rule shows): partition 1's records, marked, still wait behind partition 0's chunk.
    await t.commitOf(1);
    expect(t.out).toEqual([]);

    // Partition 0's first mark returns: its chunk goes out, then partition 1's (already marked);
    // partition 0's second chunk waits for its own mark.
    await t.commitOf(0);
    expect(t.out).toEqual(['p0:0', 'p0:1', 'p1:0', 'p1:1']);

    // Partition 1's second mark returns first again: its records wait behind partition 0's second
    // chunk, fetched before them.
    await t.commitOf(3);
    expect(t.out).toEqual(['p0:0', 'p0:1', 'p1:0', 'p1:1']);

    await t.commitOf(2);
    const fetchOrder = ['p0:0', 'p0:1', 'p1:0', 'p1:1', 'p0:2', 'p0:3', 'p1:2', 'p1:3'];
    expect(t.out).toEqual(fetchOrder);

    // Nothing more goes out on another pump: each record went out once.
    t.feed.schedulePump();
    await turn();
    expect(t.out).toEqual(fetchOrder);
    expect(t.state(topics.input, 0).tracker.unsettled).toBe(4);
    expect(t.state(topics.input, 1).tracker.unsettled).toBe(4);
  });

  it('lets records out once their mark commit has failed (best effort), never before', async () => {
    // The consumer's own commits, on a kafkajs consumer whose commit the test fails.
    const failures: ((error: Error) => void)[] = [];
    const metadata: (string | null)[] = [];
    const consumer = {
      commitOffsets: (offsets: { metadata: string | null }[]) => {
        metadata.push(...offsets.map((o) => o.metadata));
        return new Promise<void>((_, reject) => failures.push(reject));
      },
    } as unknown as KafkajsConsumer;
    let offsetCommits: OffsetCommits | undefined;
    const t = feedWithHeldCommits({ flushMarks: () => (offsetCommits as OffsetCommits).flush() });
    offsetCommits = new OffsetCommits(consumer, t.partitions, { clock: systemClock, config, logger });

    await t.feed.eachBatch(payload({ revoked: false }, records(0, 3)));
    await turn();
    expect(metadata).toEqual(['sluice1:2:1']); // the mark is being written
    expect(t.handedOut).toEqual([]); // and its commit has not answered yet

    failures.shift()?.(new Error('The coordinator is not aware of this member'));
    await turn();
    expect(t.handedOut).toEqual([0, 1, 2]);
  });

  it('skips records fetched again while their mark commits, and hands each out once', async () => {
    const t = feedWithHeldCommits();
    const running = { revoked: false };
    await t.feed.eachBatch(payload(running, records(0, 3)));
    // The same records again (a rebalance kept the partition here): nothing new, no new mark.
    await t.feed.eachBatch(payload(running, records(0, 3)));
    expect(t.commits).toHaveLength(1);
    // Partly new: only the new records are taken, under a mark that reaches them.
    await t.feed.eachBatch(payload(running, records(1, 4)));
    expect(t.commits).toHaveLength(2);
    expect(t.state().mark).toEqual({ through: 4, count: 1 });

    await t.commit();
    expect(t.handedOut).toEqual([0, 1, 2]);
    await t.commit();
    expect(t.handedOut).toEqual([0, 1, 2, 3, 4]);
    // Fetched again after they went out: still nothing twice.
    await t.feed.eachBatch(payload(running, records(0, 5)));
    await turn();
    expect(t.commits).toHaveLength(0);
    expect(t.handedOut).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('Kafka record feed: retry-topic records wait for their due time and for their mark', () => {
  const retry = { topic: topics.retry, partition: 0 };

  it('parks a chunk not yet due, lets other partitions past it, and when the timer fires before the mark of a chunk parked behind it, that chunk waits for its mark', async () => {
    const clock = new ManualClock();
    const t = feedWithHeldCommits({ clock });
    const running = { revoked: false };
    const dueAt = clock.now() + 1_000;
    await t.feed.eachBatch(payload(running, retryRecords(0, 2, dueAt), retry)); // commit 0
    await t.feed.eachBatch(payload(running, records(0, 2))); // commit 1
    expect(t.out).toEqual([]);

    // The retry chunk's mark returns: it is not due, so it is parked and its partition deferred.
    await t.commitOf(0);
    expect(t.out).toEqual([]);
    expect(t.feed.isDeferred(topics.retry, 0)).toBe(true);

    // The next retry batch goes straight behind the parked chunk, its mark still on its way.
    await t.feed.eachBatch(payload(running, retryRecords(2, 2, dueAt), retry)); // commit 2
    expect(t.commits).toHaveLength(2);

    // The input partition's records, fetched after the parked chunk, are not held back by it.
    await t.commitOf(1);
    expect(t.out).toEqual(['p0:0', 'p0:1']);

    clock.advance(1_000);
    await turn();
    expect(t.out).toEqual(['p0:0', 'p0:1']); // due now, but the timer has not fired yet

    // The timer unparks both chunks. The first goes out; the second waits for its mark.
    clock.advance(1);
    await turn();
    expect(t.feed.isDeferred(topics.retry, 0)).toBe(false);
    expect(t.out).toEqual(['p0:0', 'p0:1', 'r0:0', 'r0:1']);

    await t.commitOf(2);
    const all = ['p0:0', 'p0:1', 'r0:0', 'r0:1', 'r0:2', 'r0:3'];
    expect(t.out).toEqual(all);
    clock.advance(10_000);
    t.feed.schedulePump();
    await turn();
    expect(t.out).toEqual(all);
  });

  it('hands a parked chunk whose mark returned while it was parked out when due, in order, once; a later-due chunk behind it waits its own turn', async () => {
    const clock = new ManualClock();
    const t = feedWithHeldCommits({ clock });
    const running = { revoked: false };
    const now = clock.now();
    await t.feed.eachBatch(payload(running, retryRecords(0, 2, now + 1_000), retry)); // commit 0
    await t.commitOf(0); // parked: not due
    await t.feed.eachBatch(payload(running, retryRecords(2, 2, now + 1_000), retry)); // commit 1, parked
    await t.feed.eachBatch(payload(running, retryRecords(4, 2, now + 3_000), retry)); // commit 2, parked
    await t.commitOf(1);
    await t.commitOf(2);
    // Every mark has returned; nothing is due.
    expect(t.commits).toHaveLength(0);
    expect(t.handedOut).toEqual([]);

    clock.advance(1_001);
    await turn();
    expect(t.handedOut).toEqual([0, 1, 2, 3]);
    expect(t.feed.isDeferred(topics.retry, 0)).toBe(true); // parked again, for offset 4's due time

    clock.advance(1_000);
    await turn();
    expect(t.handedOut).toEqual([0, 1, 2, 3]);

    clock.advance(1_000);
    await turn();
    expect(t.handedOut).toEqual([0, 1, 2, 3, 4, 5]);
    clock.advance(10_000);
    t.feed.schedulePump();
    await turn();
    expect(t.handedOut).toEqual([0, 1, 2, 3, 4, 5]);
    expect(t.feed.isDeferred(topics.retry, 0)).toBe(false);
  });
});
