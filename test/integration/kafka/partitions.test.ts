import pino from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, defineMessage } from '../../../src/index.js';
import { kafkaTransport } from '../../../transports/kafka/index.js';
import { ensureKafka } from '../../infra/kafka/kafka.mjs';
import { waitFor } from '../../support/wait-for.js';
import { testKafkaConfig, unique, withAdmin } from './kafka-fixture.js';

/**
 * Kafka with several partitions, through the bus (issue 18): per-key order, two rebalances (a
 * member joins, a member leaves) and the group's commits, on one topic of 4 partitions and 8 keys.
 */
const Step = defineMessage('it.partitions.step.v1', z.object({ key: z.string(), seq: z.number().int() }));

interface Handled {
  readonly member: string;
  readonly key: string;
  readonly seq: number;
}

describe('kafka: four partitions through the bus', () => {
  const buses: Bus[] = [];
  beforeAll(async () => {
    await ensureKafka();
  }, 180_000);
  afterEach(async () => {
    await Promise.allSettled(buses.splice(0).map((b) => b.stop()));
  });

  const newBus = () => {
    const bus = createBus(
      {
        service: 'it-partitions',
        transport: { ...testKafkaConfig, numPartitions: 4 },
        shutdown: { signals: [], timeoutMs: 5_000 },
      },
      { transports: [kafkaTransport()], logger: pino({ level: 'silent' }) },
    );
    buses.push(bus);
    return bus;
  };
  const member = (name: string, endpoint: string, handled: Handled[]): Bus => {
    const bus = newBus();
    bus.endpoint(endpoint, { concurrency: 16, prefetch: 64, orderBy: 'key' }).handle(Step, async (step) => {
      handled.push({ member: name, key: step.key, seq: step.seq });
      // A little work, so that messages are in flight when the group rebalances.
      await new Promise((resolve) => setTimeout(resolve, 1));
    });
    return bus;
  };

  it('keeps per-key order across a join and a leave, handles every message, and commits every partition', async () => {
    const endpoint = unique('partitions');
    const handled: Handled[] = [];
    const a = member('a', endpoint, handled);
    await a.start();
    const producer = newBus();
    await producer.start();
    const keys = Array.from({ length: 8 }, (_, i) => `key-${i}`);
    const perKey = 60;
    const total = keys.length * perKey;
    let b: Bus | undefined;
    for (let seq = 0; seq < perKey; seq++) {
      for (const key of keys) await producer.send(endpoint, Step, { key, seq }, { key, id: `${key}-${seq}` });
      if (seq === 20) {
        b = member('b', endpoint, handled);
        await b.start();
      }
      if (seq === 40) {
        await waitFor(() => new Set(handled.map((h) => h.member)).has('b'), { timeoutMs: 30_000, what: 'b handling' });
        await a.stop();
      }
    }
    const firstTime = new Map<string, number>();
    await waitFor(
      () => {
        for (const h of handled) if (!firstTime.has(`${h.key}/${h.seq}`)) firstTime.set(`${h.key}/${h.seq}`, 0);
        return firstTime.size === total;
      },
      { timeoutMs: 60_000, what: () => `every message handled (${firstTime.size} of ${total})` },
    );

    // Per key, each message is handled the first time only after every earlier one of its key
    // (redeliveries after a revoked partition may repeat what was handled, never reorder it).
    for (const key of keys) {
      const firsts: number[] = [];
      const seen = new Set<number>();
      for (const h of handled) {
        if (h.key !== key || seen.has(h.seq)) continue;
        seen.add(h.seq);
        firsts.push(h.seq);
      }
      expect(firsts, key).toEqual(Array.from({ length: perKey }, (_, i) => i));
    }
    // The partitions were shared: both members handled messages, of more than one partition.
    expect(new Set(handled.map((h) => h.member))).toEqual(new Set(['a', 'b']));
    // Repeats are bounded by what was in flight at the rebalances, not a replay of the topic.
    expect(handled.length - total).toBeLessThan(total / 2);

    // The group committed every partition to its end once the remaining member went idle.
    await waitFor(
      async () =>
        withAdmin(async (admin) => {
          const ends = await admin.fetchTopicOffsets(endpoint);
          const [committed] = await admin.fetchOffsets({ groupId: endpoint, topics: [endpoint] });
          if (ends.length !== 4) return false;
          return ends.every((end) => {
            const c = committed?.partitions.find((p) => p.partition === end.partition);
            return c !== undefined && c.offset === end.high;
          });
        }),
      { timeoutMs: 20_000, intervalMs: 250, what: 'commits of all 4 partitions at their end offsets' },
    );
    expect(b).toBeDefined();
  }, 180_000);
});
