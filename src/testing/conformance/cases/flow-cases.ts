import { expect } from 'vitest';
import type { Consumer, Delivery, Transport } from '../../../transport-core/index.js';
import { type CaseContext, type ConformanceCase, message } from '../conformance-case.js';
import { waitFor } from '../wait-for.js';

/**
 * While the consumer `pausedConsumer` makes is paused, a competing consumer gets what is sent; once
 * resumed, it gets what is sent next.
 */
async function pausedUntilResumed(
  { connect, declared, collector, patience }: CaseContext,
  pausedConsumer: (t: Transport, address: string, onDelivery: (d: Delivery) => void) => Promise<Consumer>,
): Promise<void> {
  const t = await connect();
  const address = await declared(t);
  const paused = collector();
  const consumer = await pausedConsumer(t, address, paused.onDelivery);
  const other = collector();
  const otherConsumer = await t.consume(address, other.onDelivery, { prefetch: 10 });
  await t.send(address, message('while-paused'));
  await (await other.nth(1)).complete();
  await otherConsumer.close({ drainTimeoutMs: patience });
  expect(paused.got).toHaveLength(0);
  await consumer.resume();
  await t.send(address, message('after-resume'));
  const d = await paused.nth(1);
  // Which delivery came, and how often it had been handed out before, says where a redelivery of
  // "while-paused" came from (a commit the other consumer did not make, or an older position).
  expect(d.body.toString(), `first delivery after resume: ${d.deliveryId}, delivery count ${d.deliveryCount}`).toBe(
    'after-resume',
  );
  await d.complete();
}

/** Flow control: pause and resume, the prefetch limit, draining on close. */
export const flowCases: readonly ConformanceCase[] = [
  {
    name: 'pause stops deliveries and resume restarts them',
    needs: ['competingConsumers'],
    run: (context) =>
      pausedUntilResumed(context, async (t, address, onDelivery) => {
        const consumer = await t.consume(address, onDelivery, { prefetch: 10 });
        await consumer.pause();
        return consumer;
      }),
  },
  {
    name: 'a consumer made paused hands out nothing until resumed',
    needs: ['competingConsumers'],
    // How a consumer made again while the kill switch holds its endpoint starts.
    run: (context) =>
      pausedUntilResumed(context, (t, address, onDelivery) =>
        t.consume(address, onDelivery, { prefetch: 10, paused: true }),
      ),
  },
  {
    name: 'hands out up to the prefetch, and never more unsettled deliveries',
    async run({ connect, declared, patience }) {
      const t = await connect();
      const address = await declared(t);
      const prefetch = 3;
      const held: Delivery[] = [];
      let holding = true;
      let unsettled = 0;
      let maxUnsettled = 0;
      let done = 0;
      const settleLater = (d: Delivery) =>
        // Settle later, giving the transport every chance to over-deliver.
        setTimeout(() => {
          unsettled--;
          d.complete().then(() => done++);
        }, 2);
      await t.consume(
        address,
        (d) => {
          unsettled++;
          maxUnsettled = Math.max(maxUnsettled, unsettled);
          if (holding) held.push(d);
          else settleLater(d);
        },
        { prefetch },
      );
      for (let i = 0; i < 40; i++) await t.send(address, message(`m${i}`));
      // Nothing settles until the consumer holds a full prefetch: the limit is not 1.
      await waitFor(() => held.length === prefetch, { timeoutMs: patience, what: `${prefetch} deliveries in flight` });
      holding = false;
      for (const d of held.splice(0)) settleLater(d);
      await waitFor(() => done === 40, { timeoutMs: patience * 2, what: '40 completions' });
      expect(maxUnsettled).toBe(prefetch);
    },
  },
  {
    name: 'close drains: a delivery settled during close is not redelivered',
    async run({ connect, declared, collector, patience }) {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      const consumer = await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('in-flight'));
      const d = await c.nth(1);
      const closing = consumer.close({ drainTimeoutMs: patience });
      setTimeout(() => void d.complete(), 50);
      await closing;
      await t.send(address, message('sentinel'));
      const c2 = collector();
      await t.consume(address, c2.onDelivery, { prefetch: 10 });
      expect((await c2.nth(1)).body.toString()).toBe('sentinel');
    },
  },
];
