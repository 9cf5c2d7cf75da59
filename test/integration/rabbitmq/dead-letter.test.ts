import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineMessage, PermanentError } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { trackedRabbitmq, unique } from './rabbitmq-test-kit.js';

const rabbit = trackedRabbitmq();

describe('rabbitmq dead letters through the bus', () => {
  afterAll(() => rabbit.cleanup());

  it('dead-letters a failing message with its fault, then redrives chosen ones back to the handler', async () => {
    const Order = defineMessage(`dl.${unique('order')}.v1`, z.object({ n: z.number() }));
    const bus = createBus(
      { service: 'dl-test', transport: rabbit.config, shutdown: { signals: [], timeoutMs: 5_000 } },
      { transports: [rabbit.definition], logger: pino({ level: 'silent' }) },
    );
    const endpoint = unique('dl-orders');
    let broken = true;
    const handled: number[] = [];
    bus.endpoint(endpoint, { concurrency: 4, retry: { kind: 'none' } }).handle(Order, async (order, ctx) => {
      if (broken) throw new PermanentError(`order ${order.n} rejected`);
      handled.push(order.n);
      expect(ctx.deliveryCount).toBe(1);
    });
    await bus.start();
    try {
      const ids = new Map<number, string>();
      for (let n = 0; n < 5; n++) ids.set(n, await bus.send(endpoint, Order, { n }));
      const dlq = bus.deadLetters(endpoint);
      await waitFor(async () => (await dlq.count()) === 5, { timeoutMs: 10_000, what: '5 dead letters' });

      const peeked = await dlq.peek(10);
      expect(peeked.map((d) => d.messageId)).toEqual([...ids.values()]);
      expect(peeked[0]?.fault).toMatchObject({
        reason: 'permanent-failure',
        endpoint,
        originalAddress: endpoint,
        errorName: 'PermanentError',
      });
      expect(peeked[0]?.fault?.description).toContain('order 0 rejected');
      // Peeking removes nothing.
      expect(await dlq.count()).toBe(5);

      broken = false;
      // By dead-letter id and by message id.
      const chosen = [peeked[1]?.deadLetterId ?? '', ids.get(3) ?? ''];
      const first = await dlq.redrive({ ids: chosen }, 'fixed the validation bug');
      expect(first.moved).toBe(2);
      expect(first.ids).toEqual([ids.get(1), ids.get(3)]);
      await waitFor(() => handled.length === 2, { timeoutMs: 10_000, what: 'redriven pair handled' });
      expect(handled.sort()).toEqual([1, 3]);
      await waitFor(async () => (await dlq.count()) === 3, { what: 'three left' });
      // The ones not chosen stay, in order.
      expect((await dlq.peek(10)).map((d) => d.messageId)).toEqual([ids.get(0), ids.get(2), ids.get(4)]);

      const limited = await dlq.redrive({ limit: 1 }, 'one more');
      expect(limited.ids).toEqual([ids.get(0)]);
      const rest = await dlq.redrive({ all: true }, 'the rest');
      expect(rest.ids).toEqual([ids.get(2), ids.get(4)]);
      await waitFor(() => handled.length === 5, { timeoutMs: 10_000, what: 'all handled' });
      expect(await dlq.count()).toBe(0);
      expect(bus.health().endpoints[endpoint]?.counters.deadLettered).toBe(5);
    } finally {
      await bus.stop();
    }
  });
});
