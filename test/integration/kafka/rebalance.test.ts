import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  LockLostError,
  type Delivery,
  type OutgoingMessage,
  type Transport,
} from '../../../src/transport-core/index.js';
import { ensureKafka } from '../../infra/kafka/kafka.mjs';
import { waitFor } from '../../support/wait-for.js';
import { connectKafka, unique } from './kafka-fixture.js';

const message = (body: string, key: string): OutgoingMessage => ({
  messageId: body,
  body: Buffer.from(body),
  headers: {},
  contentType: 'text/plain',
  key,
  messageType: 'it.rebalance.v1',
});

describe('kafka: rebalance between two consumers of one group', () => {
  const open: Transport[] = [];
  beforeAll(async () => {
    await ensureKafka();
  }, 180_000);
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((t) => t.close()));
  });

  it('revoked partitions settle as LockLostError and their records go to the new owner; kept ones settle', async () => {
    const a = await connectKafka({ numPartitions: 4, replicationFactor: 1 });
    const b = await connectKafka({ numPartitions: 4, replicationFactor: 1 });
    open.push(a, b);
    const address = unique('rebalance');
    await a.declare({ address, endpoint: address, messageTypes: [] });
    await b.declare({ address, endpoint: address, messageTypes: [] });

    // A holds everything it gets, unsettled.
    const heldByA: Delivery[] = [];
    await a.consume(address, (d) => heldByA.push(d), { prefetch: 100 });
    const keys = Array.from({ length: 16 }, (_, i) => `key-${i}`);
    for (const key of keys) await a.send(address, message(`m-${key}`, key));
    await waitFor(() => heldByA.length === keys.length, { timeoutMs: 15_000, what: 'A holding all 16' });
    const partitionsOfA = new Set(heldByA.map((d) => d.deliveryId.split(':')[1]));
    expect(partitionsOfA.size).toBeGreaterThan(1);

    // B joins: the group rebalances and B takes some partitions; A keeps the others.
    const gotByB: Delivery[] = [];
    await b.consume(address, (d) => gotByB.push(d), { prefetch: 100 });
    await waitFor(() => gotByB.length > 0, { timeoutMs: 20_000, what: 'B receiving the records of its partitions' });

    const results = await Promise.allSettled(heldByA.map((d) => d.complete()));
    const lost = heldByA.filter((_, i) => (results[i] as PromiseSettledResult<void>).status === 'rejected');
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LockLostError);
    // What A lost is exactly what B now owns, record for record.
    await waitFor(() => gotByB.length === lost.length, { timeoutMs: 10_000, what: 'B receiving every lost record' });
    expect(new Set(lost.map((d) => d.deliveryId))).toEqual(new Set(gotByB.map((d) => d.deliveryId)));
    expect(lost.length).toBeGreaterThan(0);
    expect(lost.length).toBeLessThan(heldByA.length);
    const partitionsOfB = new Set(gotByB.map((d) => d.deliveryId.split(':')[1]));
    for (const d of lost) expect(partitionsOfB.has(d.deliveryId.split(':')[1])).toBe(true);
    for (const d of gotByB) await d.complete();
  }, 60_000);

  it('two members share the stream and every message is handled at least once', async () => {
    const a = await connectKafka({ numPartitions: 4, replicationFactor: 1 });
    const b = await connectKafka({ numPartitions: 4, replicationFactor: 1 });
    open.push(a, b);
    const address = unique('share');
    await a.declare({ address, endpoint: address, messageTypes: [] });
    const handled = new Map<string, string[]>();
    const handler = (who: string) => (d: Delivery) => {
      const body = d.body.toString();
      handled.set(body, [...(handled.get(body) ?? []), who]);
      setTimeout(() => void d.complete().catch(() => {}), 2);
    };
    await a.consume(address, handler('a'), { prefetch: 20 });
    const total = 300;
    for (let i = 0; i < total; i++) {
      await a.send(address, message(`n-${i}`, `key-${i % 13}`));
      if (i === 100) await b.consume(address, handler('b'), { prefetch: 20 });
    }
    await waitFor(() => handled.size === total, { timeoutMs: 30_000, what: 'all handled' });
    const by = new Set([...handled.values()].flat());
    expect(by).toEqual(new Set(['a', 'b']));
  }, 60_000);
});
