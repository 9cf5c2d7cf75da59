import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery, OutgoingMessage, Transport } from '../../../src/transport-core/index.js';
import { ensureKafka } from '../../infra/kafka/kafka.mjs';
import { waitFor } from '../../support/wait-for.js';
import { connectKafka, limitMessageBytes, unique } from './kafka-fixture.js';

const message = (body: string): OutgoingMessage => ({
  messageId: body,
  body: Buffer.from(body),
  headers: { 'x-origin': 'test' },
  contentType: 'text/plain',
  key: 'same-key',
  messageType: 'it.retry.v1',
});

describe('kafka: delayed release through the retry topic', () => {
  const open: Transport[] = [];
  beforeAll(async () => {
    await ensureKafka();
  }, 180_000);
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((t) => t.close()));
  });

  it('waits at least the delay without holding up later messages, and counts the delivery', async () => {
    const t = await connectKafka();
    open.push(t);
    const address = unique('retry');
    await t.declare({ address, endpoint: address, messageTypes: [] });
    const got: { d: Delivery; at: number }[] = [];
    await t.consume(address, (d) => got.push({ d, at: performance.now() }), { prefetch: 10 });
    await t.send(address, message('slow'));
    await waitFor(() => got.length === 1, { timeoutMs: 15_000, what: 'first delivery' });
    const first = got[0]?.d as Delivery;
    // Long enough that five acks=all sends and their delivery fit well inside it on a loaded box.
    const delayMs = 4_000;
    const releasedAt = performance.now();
    await first.release({ delayMs, headers: { 'sluice-attempts': '1' } });

    // Messages sent after the release flow while the copy waits on its (paused) retry partition.
    for (let i = 0; i < 5; i++) await t.send(address, message(`fast-${i}`));
    await waitFor(() => got.length === 6, { timeoutMs: 15_000, what: 'five later messages' });
    for (const { d } of got.slice(1)) await d.complete();
    expect(got.slice(1).every(({ at }) => at - releasedAt < delayMs)).toBe(true);

    await waitFor(() => got.length === 7, { timeoutMs: 15_000, what: 'the delayed copy' });
    const again = got[6] as { d: Delivery; at: number };
    expect(again.at - releasedAt).toBeGreaterThanOrEqual(delayMs - 2);
    expect(again.d.body.toString()).toBe('slow');
    expect(again.d.deliveryCount).toBe(2);
    expect(again.d.headers['sluice-attempts']).toBe('1');
    expect(again.d.headers['x-origin']).toBe('test');
    expect(again.d.headers['sluice-delivery-count']).toBe('1');
    expect(again.d.deliveryId.startsWith(`${address}.${address}.retry:`)).toBe(true);

    // A second release counts on: the copy of a copy carries deliveryCount 2 forward.
    await again.d.release();
    await waitFor(() => got.length === 8, { timeoutMs: 15_000, what: 'the second copy' });
    expect(got[7]?.d.deliveryCount).toBe(3);
    await got[7]?.d.complete();
  }, 60_000);

  it('a record whose copy does not fit the retry topic is redelivered in process after the delay', async () => {
    const t = await connectKafka();
    open.push(t);
    const address = unique('retry-big');
    await t.declare({ address, endpoint: address, messageTypes: [] });
    await limitMessageBytes(`${address}.${address}.retry`, 2_000);
    const got: { d: Delivery; at: number }[] = [];
    await t.consume(address, (d) => got.push({ d, at: performance.now() }), { prefetch: 10 });
    const big = { ...message('big'), body: Buffer.alloc(6_000, 'b') };
    await t.send(address, big);
    await waitFor(() => got.length === 1, { timeoutMs: 15_000, what: 'first delivery' });
    const delayMs = 500;
    const releasedAt = performance.now();
    await (got[0] as { d: Delivery }).d.release({ delayMs, headers: { 'sluice-attempts': '1' } });

    // Later records are not held up meanwhile.
    await t.send(address, message('later'));
    await waitFor(() => got.length === 3, { timeoutMs: 15_000, what: 'the later record and the redelivery' });
    const again = got.find(({ d }, i) => i > 0 && d.body.length === 6_000) as { d: Delivery; at: number };
    expect(again.at - releasedAt).toBeGreaterThanOrEqual(delayMs - 2);
    expect(again.d.body.equals(big.body)).toBe(true);
    expect(again.d.deliveryCount).toBe(2);
    expect(again.d.headers['sluice-attempts']).toBe('1');
    expect(again.d.headers['x-origin']).toBe('test');
    expect(again.d.deliveryId).toBe(`${address}:0:0`);
    for (const { d } of got.slice(1)) await d.complete();

    // Both offsets are committed: a new member of the group reads nothing again.
    await t.close();
    open.length = 0;
    const t2 = await connectKafka();
    open.push(t2);
    const after: Delivery[] = [];
    await t2.consume(address, (d) => after.push(d), { prefetch: 10 });
    await t2.send(address, message('marker'));
    await waitFor(() => after.length >= 1, { timeoutMs: 30_000, what: 'the marker' });
    expect(after.map((d) => d.body.toString())).toEqual(['marker']);
  }, 90_000);
});
