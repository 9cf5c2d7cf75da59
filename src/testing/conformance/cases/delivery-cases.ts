import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { type ConformanceCase, message } from '../conformance-case.js';

/** Sending, receiving under a lock, complete and release. */
export const deliveryCases: readonly ConformanceCase[] = [
  {
    name: 'declares its kind and capabilities',
    async run({ connect, definition }) {
      const t = await connect();
      expect(t.kind).toBe(definition.kind);
      expect(t.state).toBe('connected');
      expect(typeof t.capabilities.nativeDelay).toBe('boolean');
      expect(typeof t.capabilities.nativeDeadLetter).toBe('boolean');
      expect(typeof t.capabilities.durable).toBe('boolean');
      expect(['native', 'header']).toContain(t.capabilities.deliveryCount);
      expect(['none', 'partition', 'session']).toContain(t.capabilities.ordering);
    },
  },
  {
    name: 'round-trips body and headers byte for byte',
    async run({ connect, declared, collector }) {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      const body = Buffer.from([0, 1, 2, 255, 254, 0x7b]);
      await t.send(address, { ...message(''), body });
      const d = await c.nth(1);
      expect(Buffer.compare(d.body, body)).toBe(0);
      expect(d.headers['x-test']).toBe('yes');
      expect(d.deliveryCount).toBe(1);
      await d.complete();
    },
  },
  {
    name: 'routes a publish to every endpoint bound to its type',
    needs: ['publish'],
    async run({ connect, collector }) {
      const t = await connect();
      const type = `conf.fanout-${randomUUID().slice(0, 8)}.v1`;
      const a = `conf-a-${randomUUID().slice(0, 8)}`;
      const b = `conf-b-${randomUUID().slice(0, 8)}`;
      await t.declare({ address: a, endpoint: a, messageTypes: [type] });
      await t.declare({ address: b, endpoint: b, messageTypes: [type] });
      const ca = collector();
      const cb = collector();
      await t.consume(a, ca.onDelivery, { prefetch: 10 });
      await t.consume(b, cb.onDelivery, { prefetch: 10 });
      await t.publish(message('fan-out', { messageType: type }));
      await (await ca.nth(1)).complete();
      await (await cb.nth(1)).complete();
    },
  },
  {
    name: 'complete removes the message',
    async run({ connect, declared, collector, patience }) {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      const consumer = await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('first'));
      await (await c.nth(1)).complete();
      await consumer.close({ drainTimeoutMs: patience });
      // A sentinel sent after the completion is the next thing a new consumer sees.
      await t.send(address, message('sentinel'));
      const c2 = collector();
      await t.consume(address, c2.onDelivery, { prefetch: 10 });
      const d = await c2.nth(1);
      expect(d.body.toString()).toBe('sentinel');
      await d.complete();
    },
  },
  {
    name: 'release redelivers with deliveryCount + 1',
    async run({ connect, declared, collector }) {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('again'));
      const first = await c.nth(1);
      expect(first.deliveryCount).toBe(1);
      await first.release();
      const second = await c.nth(2);
      expect(second.body.toString()).toBe('again');
      expect(second.deliveryCount).toBe(2);
      await second.complete();
    },
  },
  {
    name: 'release carries merged headers to the next delivery',
    async run({ connect, declared, collector }) {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('with-headers'));
      await (await c.nth(1)).release({ headers: { 'sluice-attempts': '3' } });
      const again = await c.nth(2);
      expect(again.headers['sluice-attempts']).toBe('3');
      expect(again.headers['x-test']).toBe('yes');
      await again.complete();
    },
  },
  {
    name: 'a consumer that dies without settling leaves its messages for the next consumer',
    async run({ connect, declared, collector }) {
      const t1 = await connect();
      const address = await declared(t1);
      const c1 = collector();
      await t1.consume(address, c1.onDelivery, { prefetch: 10 });
      await t1.send(address, message('orphan'));
      await c1.nth(1);
      await t1.close(); // the process "dies": its connection goes away unsettled
      const t2 = await connect();
      const c2 = collector();
      await t2.consume(address, c2.onDelivery, { prefetch: 10 });
      const d = await c2.nth(1);
      expect(d.body.toString()).toBe('orphan');
      expect(d.deliveryCount).toBeGreaterThanOrEqual(2);
      await d.complete();
    },
  },
  {
    name: 'a delayed release waits at least the delay',
    async run({ connect, declared, collector }) {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('later'));
      const first = await c.nth(1);
      const delayMs = 400;
      const releasedAt = performance.now();
      await first.release({ delayMs });
      const second = await c.nth(2);
      const waited = performance.now() - releasedAt;
      // Timers may round to the millisecond; anything earlier than that is a broken delay.
      expect(waited).toBeGreaterThanOrEqual(delayMs - 2);
      expect(second.body.toString()).toBe('later');
      await second.complete();
    },
  },
];
