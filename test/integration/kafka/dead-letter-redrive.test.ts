import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFault } from '../../../src/errors/fault.js';
import type { Delivery, OutgoingMessage, Transport } from '../../../src/transport-core/index.js';
import { ensureKafka } from '../../infra/kafka/kafka.mjs';
import { waitFor } from '../../support/wait-for.js';
import { connectKafka, limitMessageBytes, unique, withAdmin } from './kafka-fixture.js';

const message = (id: string): OutgoingMessage => ({
  messageId: id,
  body: Buffer.from(`body-${id}`),
  headers: { 'sluice-attempts': '4' },
  contentType: 'text/plain',
  key: `key-${id}`,
  messageType: 'it.dlq.v1',
});

describe('kafka: dead-letter topic and redrive', () => {
  const open: Transport[] = [];
  beforeAll(async () => {
    await ensureKafka();
  }, 180_000);
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((t) => t.close()));
  });

  it('keeps fault details in headers, and redrives by id, by limit and all, removing only what moved', async () => {
    const t = await connectKafka();
    open.push(t);
    const address = unique('dlq');
    await t.declare({ address, endpoint: address, messageTypes: [] });
    const got: Delivery[] = [];
    await t.consume(address, (d) => got.push(d), { prefetch: 10 });
    for (const id of ['a', 'b', 'c', 'd']) await t.send(address, message(id));
    await waitFor(() => got.length === 4, { timeoutMs: 15_000, what: 'four deliveries' });
    for (const d of got) {
      await d.deadLetter(
        createFault({
          reason: 'retries-exhausted',
          description: `gave up on ${d.body.toString()}`,
          attempts: 4,
          endpoint: address,
          originalAddress: address,
          now: new Date(),
          error: new TypeError('db down'),
          messageId: d.headers['sluice-message-id'],
        }),
      );
    }
    const dlq = t.deadLetters(address);
    expect(await dlq.count()).toBe(4);
    const peeked = await dlq.peek(10);
    expect(peeked.map((m) => m.messageId)).toEqual(['a', 'b', 'c', 'd']);
    expect(peeked[0]?.fault).toMatchObject({ reason: 'retries-exhausted', errorName: 'TypeError', attempts: 4 });
    expect(peeked[0]?.headers['sluice-fault-description']).toBe('gave up on body-a');
    expect(peeked[0]?.deadLetterId).toBe(`${address}.${address}.dlq:0:0`);
    // Peeking consumes nothing.
    expect(await dlq.count()).toBe(4);

    // By id: "c" moves; "a" and "b", before it, are appended again; "d" stays where it is.
    expect(await dlq.redrive({ ids: ['c'] }, 'fixed c')).toEqual({ moved: 1, ids: ['c'] });
    expect(await dlq.count()).toBe(3);
    await waitFor(() => got.length === 5, { timeoutMs: 15_000, what: 'c back on the endpoint' });
    const c = got[4] as Delivery;
    expect(c.body.toString()).toBe('body-c');
    expect(c.partitionKey).toBe('key-c');
    expect(c.deliveryCount).toBe(1);
    expect(c.headers['sluice-redrive-reason']).toBe('fixed c');
    expect(c.headers['sluice-attempts']).toBeUndefined();
    expect(c.headers['sluice-fault-reason']).toBeUndefined();
    await c.complete();
    expect((await dlq.peek(10)).map((m) => m.messageId).sort()).toEqual(['a', 'b', 'd']);

    expect((await dlq.redrive({ limit: 1 }, 'one')).moved).toBe(1);
    expect(await dlq.count()).toBe(2);
    expect((await dlq.redrive({ all: true }, 'rest')).moved).toBe(2);
    expect(await dlq.count()).toBe(0);
    await waitFor(() => got.length === 8, { timeoutMs: 15_000, what: 'all redriven back' });
    expect(
      got
        .slice(5)
        .map((d) => d.body.toString())
        .sort(),
    ).toEqual(['body-a', 'body-b', 'body-d']);
    for (const d of got.slice(5)) await d.complete();
    expect(await dlq.redrive({ all: true }, 'nothing left')).toEqual({ moved: 0, ids: [] });
  }, 60_000);

  it('dead-letters a reference when the copy does not fit the dead-letter topic, and redrive brings the body back', async () => {
    const t = await connectKafka();
    open.push(t);
    const address = unique('dlq-big');
    await t.declare({ address, endpoint: address, messageTypes: [] });
    // The dead-letter topic takes less than the input topic: a copy of a large record cannot fit.
    await limitMessageBytes(`${address}.${address}.dlq`, 2_000);
    const got: Delivery[] = [];
    await t.consume(address, (d) => got.push(d), { prefetch: 10 });
    // Two records of 600 KB: each fits the input topic (1 MB), together they exceed one batch.
    const big = { ...message('big'), body: Buffer.alloc(600_000, 'b') };
    const bigB = { ...message('big-b'), body: Buffer.alloc(600_000, 'c') };
    await t.send(address, big);
    await t.send(address, bigB);
    await t.send(address, message('small'));
    await waitFor(() => got.length === 3, { timeoutMs: 15_000, what: 'three deliveries' });
    const reject = (d: Delivery) =>
      d.deadLetter(
        createFault({
          reason: 'permanent-failure',
          description: 'rejected',
          attempts: 1,
          endpoint: address,
          originalAddress: address,
          now: new Date(),
          messageId: d.headers['sluice-message-id'],
        }),
      );
    for (const d of got) await reject(d);
    const dlq = t.deadLetters(address);
    expect(await dlq.count()).toBe(3);
    const [reference, , small] = await dlq.peek(10);
    expect(reference?.messageId).toBe('big');
    expect(reference?.body.length).toBe(0);
    expect(reference?.fault).toMatchObject({ reason: 'permanent-failure', description: 'rejected' });
    expect(reference?.headers['sluice-kafka-body-omitted']).toContain('600000 bytes did not fit');
    expect(reference?.headers['sluice-kafka-source']).toBe(`${address}:0:0`);
    expect(small?.body.toString()).toBe('body-small');

    // The partition is not held up: a later record is delivered, and its commit goes through.
    await t.send(address, message('later'));
    await waitFor(() => got.length === 4, { timeoutMs: 15_000, what: 'the later record' });
    await got[3]?.complete();

    expect(await dlq.redrive({ all: true }, 'retry all')).toEqual({ moved: 3, ids: ['big', 'big-b', 'small'] });
    await waitFor(() => got.length === 7, { timeoutMs: 30_000, what: 'all three redriven' });
    const back = got.slice(4);
    expect(back.map((d) => d.headers['sluice-message-id'])).toEqual(['big', 'big-b', 'small']);
    expect(back[0]?.body.equals(big.body)).toBe(true);
    expect(back[1]?.body.equals(bigB.body)).toBe(true);
    expect(back[2]?.body.toString()).toBe('body-small');
    expect(back.every((d) => d.headers['sluice-kafka-body-omitted'] === undefined)).toBe(true);
    for (const d of back) await d.complete();
    expect(await dlq.count()).toBe(0);

    // A reference whose source record is gone (retention; here deleteRecords) cannot be redriven:
    // it stays in the dead-letter topic instead of going back with an empty body.
    await t.send(address, { ...big, messageId: 'big2' });
    await waitFor(() => got.length === 8, { timeoutMs: 15_000, what: 'big2' });
    const big2 = got[7] as Delivery;
    await reject(big2);
    await withAdmin(async (admin) => {
      const [, , offset] = big2.deliveryId.split(':');
      await admin.fetchTopicMetadata({ topics: [address] });
      await admin.deleteTopicRecords({
        topic: address,
        partitions: [{ partition: 0, offset: String(Number(offset) + 1) }],
      });
    });
    expect(await dlq.redrive({ all: true }, 'source gone')).toEqual({ moved: 0, ids: [] });
    expect((await dlq.peek(10)).map((m) => m.messageId)).toEqual(['big2']);
  }, 90_000);
});
