import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/internal/clock.js';
import { ConsumerGate } from '../../../src/transport-core/index.js';
import { KafkaTransportConfigSchema } from '../../../transports/kafka/kafka-config.js';
import type { KafkaDelivery } from '../../../transports/kafka/kafka-delivery.js';
import { newPartitionState, type PartitionState } from '../../../transports/kafka/partition-state.js';
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

function records(from: number, count: number, valueBytes = 2): KafkaMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    offset: String(from + i),
    key: Buffer.from(`k${i}`),
    value: Buffer.alloc(valueBytes, 0x20),
    headers: {},
    timestamp: '0',
    attributes: 0,
  }));
}

function payload(state: { revoked: boolean }, messages: KafkaMessage[]): EachBatchPayload {
  const batch = { topic: topics.input, partition: 0, messages };
  return {
    batch,
    resolveOffset: () => undefined,
    heartbeat: async () => undefined,
    isRunning: () => !state.revoked,
    isStale: () => false,
  } as unknown as EachBatchPayload;
}

/** A feed whose mark commits wait until the test lets them return, in order. */
function feedWithHeldCommits({ prefetch = 1_000, maxBytesPerPartition = config.maxBytesPerPartition } = {}) {
  const handedOut: number[] = [];
  const commits: (() => void)[] = [];
  let partition: PartitionState | undefined;
  const gate = new ConsumerGate({ prefetch, clock: systemClock, logger, what: 'test' });
  const feed = new RecordFeed({
    clock: systemClock,
    logger,
    config: { ...config, maxBytesPerPartition },
    topics,
    naming,
    callback: (delivery) => {
      handedOut.push((delivery as KafkaDelivery).offset);
    },
    owner: { copies: {} as never, held: {} as never, settled: () => undefined },
    gate,
    partitionState: async (topic, p, firstOffset) => {
      partition ??= newPartitionState(topic, p, firstOffset, undefined, false);
      return partition;
    },
    partition: () => partition,
    flushMarks: () => new Promise<void>((resolve) => commits.push(resolve)),
    applyPauses: () => undefined,
    closing: () => false,
  });
  return {
    feed,
    gate,
    handedOut,
    commits,
    state: () => partition as PartitionState,
    /** The partition is revoked (and its buffer dropped); a later batch makes its state anew. */
    revoke(): void {
      const state = partition as PartitionState;
      state.revoked = true;
      feed.dropPartition(state);
      partition = undefined;
    },
    /** Lets the oldest commit under way return, then lets the feed's callbacks run. */
    async commit(): Promise<void> {
      commits.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
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
});
