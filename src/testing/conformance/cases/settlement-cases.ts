import { expect } from 'vitest';
import { AlreadySettledError, type Delivery, LockLostError } from '../../../transport-core/index.js';
import { type CaseContext, type ConformanceCase, fault, message } from '../conformance-case.js';
import { waitFor } from '../wait-for.js';

/** Sends one message to a fresh endpoint and resolves with its first delivery. */
async function oneDelivery({ connect, declared, collector }: CaseContext, body: string) {
  const t = await connect();
  const address = await declared(t);
  const c = collector();
  const consumer = await t.consume(address, c.onDelivery, { prefetch: 10 });
  await t.send(address, message(body));
  return { t, address, c, consumer, d: await c.nth(1) };
}

/** Every way to settle, each a new call on the same delivery. */
const settlements = (d: Delivery, address: string): (() => Promise<void>)[] => [
  () => d.complete(),
  () => d.release(),
  () => d.release({ delayMs: 100, headers: { 'x-again': 'yes' } }),
  () => d.deadLetter(fault('retries-exhausted', address)),
];

/**
 * The settlement kernel's promises (the rule on `Delivery`): settle once; a lost lock is final and
 * every later call says so; what a settlement leaves behind, by the transport's capabilities.
 */
export const settlementCases: readonly ConformanceCase[] = [
  {
    name: 'settles once: every later settlement rejects with AlreadySettledError, and the first stands',
    async run(context) {
      const { t, address, c, consumer, d } = await oneDelivery(context, 'once');
      await d.complete();
      for (const again of settlements(d, address)) await expect(again()).rejects.toBeInstanceOf(AlreadySettledError);
      await d.renewLock();
      // The completion stood: the next thing the endpoint sees is a sentinel sent after it.
      await t.send(address, message('sentinel'));
      const next = await c.nth(2);
      expect(next.body.toString()).toBe('sentinel');
      await next.complete();
      await consumer.close({ drainTimeoutMs: context.patience });
      expect(c.got).toHaveLength(2);
    },
  },
  {
    name: 'two settlements at once: one goes through, the other rejects with AlreadySettledError',
    async run(context) {
      const { t, address, c, d } = await oneDelivery(context, 'race');
      const [first, second] = await Promise.allSettled([
        d.deadLetter(fault('retries-exhausted', address)),
        d.complete(),
      ]);
      expect(first.status).toBe('fulfilled');
      expect(second.status).toBe('rejected');
      expect((second as PromiseRejectedResult).reason).toBeInstanceOf(AlreadySettledError);
      const dlq = t.deadLetters(address);
      await waitFor(async () => (await dlq.count()) === 1, { timeoutMs: context.patience, what: 'the dead letter' });
      expect(c.got).toHaveLength(1);
    },
  },
  {
    name: 'after the lock is lost, every settlement rejects with LockLostError and the broker redelivers',
    async run(context) {
      const { t, address, d } = await oneDelivery(context, 'lost');
      await t.close(); // the connection goes: the broker takes the message back
      for (const settle of settlements(d, address)) await expect(settle()).rejects.toBeInstanceOf(LockLostError);
      await expect(d.renewLock()).rejects.toBeInstanceOf(LockLostError);
      const t2 = await context.connect();
      const c2 = context.collector();
      await t2.consume(address, c2.onDelivery, { prefetch: 10 });
      const again = await c2.nth(1);
      expect(again.body.toString()).toBe('lost');
      expect(again.deliveryCount).toBeGreaterThanOrEqual(2);
      await again.complete();
    },
  },
  {
    name: 'a release is counted: released twice, the third delivery counts 3 (a copy carries the count)',
    async run(context) {
      const { t, c, d } = await oneDelivery(context, 'counted');
      await d.release();
      await (await c.nth(2)).release({ headers: { 'x-round': '2' } });
      const third = await c.nth(3);
      expect(third.deliveryCount).toBe(3);
      expect(third.headers['x-round']).toBe('2');
      if (t.capabilities.deliveryCount === 'header') {
        // The broker counts nothing: the release was a copy that carries the count so far.
        expect(third.headers['sluice-delivery-count']).toBe('2');
      }
      await third.complete();
    },
  },
  {
    name: 'a dead letter leaves nothing on the endpoint: moved natively, or copied and then removed',
    async run(context) {
      const { t, address, c, consumer, d } = await oneDelivery(context, 'dead');
      await d.deadLetter(fault('schema-violation', address));
      const dlq = t.deadLetters(address);
      await waitFor(async () => (await dlq.count()) === 1, { timeoutMs: context.patience, what: 'the dead letter' });
      const [dead] = await dlq.peek(1);
      expect(dead?.body.toString()).toBe('dead');
      expect(dead?.fault?.reason).toBe('schema-violation');
      if (!t.capabilities.nativeDeadLetter) {
        // A copy: it carries the fault as headers, beside the original's own.
        expect(dead?.headers['sluice-fault-reason']).toBe('schema-violation');
        expect(dead?.headers['x-test']).toBe('yes');
      }
      await t.send(address, message('sentinel'));
      const next = await c.nth(2);
      expect(next.body.toString()).toBe('sentinel');
      await next.complete();
      await consumer.close({ drainTimeoutMs: context.patience });
    },
  },
];
