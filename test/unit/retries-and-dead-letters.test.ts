import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type BusConfigInput,
  defineMessage,
  type EndpointOptions,
  type Handler,
  type MessageOf,
  MessageRejected,
  PermanentError,
} from '../../src/index.js';
import { createTestHarness, type TestHarness } from '../../src/testing/index.js';

// On sluice/testing: each test awaits `settled()` (virtual time, no polling) and reads the records.
const Charge = defineMessage('billing.charge.v1', z.object({ orderId: z.string(), amount: z.number().positive() }));
const Refund = defineMessage('billing.refund.v1', z.object({ orderId: z.string() }));

describe('retries and dead letters', () => {
  let harness: TestHarness | undefined;
  const start = async (config: BusConfigInput = {}) => {
    harness = createTestHarness({ config });
    return harness;
  };
  const charging = async (options: EndpointOptions, handler: Handler<MessageOf<typeof Charge>>) => {
    const h = await start();
    h.bus.endpoint('billing', options).handle(Charge, handler);
    await h.start();
    return h;
  };
  afterEach(async () => {
    await harness?.stop();
  });

  it('retries in process, counting attempts, then completes', async () => {
    const attempts: number[] = [];
    const h = await charging({ retry: { kind: 'immediate', retries: 3 } }, async (_m, ctx) => {
      attempts.push(ctx.attempt);
      if (ctx.attempt < 3) throw new Error('flaky');
    });
    await h.send('billing', Charge, { orderId: 'o1', amount: 5 });
    await h.settled();
    expect(attempts).toEqual([1, 2, 3]);
    expect(h.consumed(Charge)).toHaveLength(1);
    expect(h.bus.health().endpoints.billing?.counters.retried).toBe(0);
  });

  it('hands long waits to the broker and keeps the attempt count across the redelivery', async () => {
    const seen: { attempt: number; deliveryCount: number }[] = [];
    const h = await charging(
      { retry: { kind: 'intervals', delaysMs: [10, 150] }, inProcessRetryMaxDelayMs: 100 },
      async (_m, ctx) => {
        seen.push({ attempt: ctx.attempt, deliveryCount: ctx.deliveryCount });
        if (ctx.attempt < 3) throw new Error('still down');
      },
    );
    await h.send('billing', Charge, { orderId: 'o1', amount: 5 });
    await h.settled();
    expect(seen).toEqual([
      { attempt: 1, deliveryCount: 1 },
      { attempt: 2, deliveryCount: 1 },
      { attempt: 3, deliveryCount: 2 },
    ]);
    expect(h.outcomes.map((o) => o.outcome?.kind)).toEqual(['retry', 'completed']);
    expect(h.bus.health().endpoints.billing?.counters.retried).toBe(1);
  });

  it('keeps one global attempt limit across two consumer instances', async () => {
    const seen: { instance: number; attempt: number }[] = [];
    const h = await start();
    for (const [instance, bus] of [h.bus, h.addInstance()].entries()) {
      bus
        .endpoint('billing', { retry: { kind: 'intervals', delaysMs: [20, 20, 20] }, inProcessRetryMaxDelayMs: 0 })
        .handle(Charge, async (_m, ctx) => {
          seen.push({ instance, attempt: ctx.attempt });
          throw new Error('database down');
        });
    }
    await h.start();
    await h.send('billing', Charge, { orderId: 'o1', amount: 5 });
    await h.settled();
    expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3, 4]);
    expect(new Set(seen.map((s) => s.instance)).size).toBe(2);
    const [dead] = await h.bus.deadLetters('billing').peek();
    expect(dead?.fault?.attempts).toBe(4);
    expect(dead?.fault?.reason).toBe('retries-exhausted');
  });

  it('dead-letters with the full fault record next to the original bytes', async () => {
    const h = await charging({ retry: { kind: 'immediate', retries: 1 } }, async () => {
      throw new RangeError('card limit exceeded');
    });
    const id = await h.send('billing', Charge, { orderId: 'o1', amount: 5 }, { id: 'msg-1' });
    await h.settled();
    const [dead] = await h.bus.deadLetters('billing').peek();
    const fault = dead?.fault;
    expect(fault).toMatchObject({
      reason: 'retries-exhausted',
      errorName: 'RangeError',
      errorMessage: 'card limit exceeded',
      attempts: 2,
      endpoint: 'billing',
      originalAddress: 'billing',
      messageId: id,
      messageType: 'billing.charge.v1',
    });
    expect(fault?.description).toBe('failed 2 attempt(s); last: RangeError: card limit exceeded');
    expect(fault?.stack).toMatch(/^RangeError: card limit exceeded\n/);
    expect(fault?.host).toBeTruthy();
    expect(Date.parse(fault?.firstFailureAt ?? '')).toBeLessThanOrEqual(Date.parse(fault?.lastFailureAt ?? ''));
    expect(dead?.headers['sluice-fault-error-name']).toBe('RangeError');
    expect(JSON.parse(dead?.body.toString() ?? '{}').data).toEqual({ orderId: 'o1', amount: 5 });
    // The harness's record carries the same fault.
    expect(h.deadLettered(Charge)[0]?.fault).toEqual(fault);
  });

  it('never retries a PermanentError', async () => {
    let calls = 0;
    const h = await charging({ retry: { kind: 'immediate', retries: 5 } }, async () => {
      calls++;
      throw new PermanentError('order was cancelled');
    });
    await h.send('billing', Charge, { orderId: 'o1', amount: 5 });
    await h.settled();
    expect(calls).toBe(1);
    expect(h.deadLettered(Charge).map((d) => d.fault.reason)).toEqual(['permanent-failure']);
  });

  it('dead-letters at once when the handler asks, and redelivers when it asks for later', async () => {
    const calls: number[] = [];
    const h = await charging({}, async (m, ctx) => {
      calls.push(ctx.attempt);
      if (m.orderId === 'bad') ctx.deadLetter('customer blocked');
      if (ctx.attempt === 1) ctx.retryLater(80_000);
    });
    await h.send('billing', Charge, { orderId: 'bad', amount: 1 });
    await h.settled();
    expect(h.deadLettered(Charge).map((d) => d.fault)).toEqual([
      expect.objectContaining({ reason: 'handler-dead-lettered', description: 'customer blocked' }),
    ]);
    const sent = h.clock?.now() ?? 0;
    await h.send('billing', Charge, { orderId: 'later', amount: 1 });
    await h.settled();
    expect(h.consumed(Charge)).toHaveLength(1);
    expect((h.clock?.now() ?? 0) - sent).toBe(80_000);
    expect(calls).toEqual([1, 1, 2]);
  });

  it('lets a message type override the endpoint retry policy', async () => {
    const calls = { charge: 0, refund: 0 };
    const h = await start();
    h.bus
      .endpoint('billing', { retry: { kind: 'none' } })
      .handle(Charge, async () => {
        calls.charge++;
        throw new Error('x');
      })
      .handle(
        Refund,
        async () => {
          calls.refund++;
          throw new Error('x');
        },
        { retry: { kind: 'immediate', retries: 2 } },
      );
    await h.start();
    await h.send('billing', Charge, { orderId: 'o', amount: 1 });
    await h.send('billing', Refund, { orderId: 'o' });
    await h.settled();
    expect(h.deadLettered()).toHaveLength(2);
    expect(calls).toEqual({ charge: 1, refund: 3 });
  });

  it('drops a droppable message type instead of dead-lettering it', async () => {
    const h = await start();
    h.bus.endpoint('billing', { retry: { kind: 'none' } }).handle(
      Charge,
      async () => {
        throw new Error('nobody cares');
      },
      { drop: true },
    );
    await h.start();
    await h.send('billing', Charge, { orderId: 'o', amount: 1 });
    await h.sendRaw('billing', {
      specversion: '1.0',
      id: 'v',
      source: 's',
      type: Charge.type,
      time: '2026-01-01T00:00:00Z',
      data: { orderId: 'o' },
    });
    await h.settled();
    expect(h.skipped(Charge).map((s) => s.reason)).toEqual(['dropped', 'dropped']);
    expect(await h.bus.deadLetters('billing').count()).toBe(0);
  });

  it('moves an unknown type to the skipped queue when configured', async () => {
    const h = await charging({ unknownTypes: 'skippedQueue' }, async () => {});
    await h.send('billing', Refund, { orderId: 'o' });
    await h.settled();
    expect(h.skipped(Refund).map((s) => s.reason)).toEqual(['unknown-type']);
    expect(h.broker.queue('billing.skipped').readyCount).toBe(1);
    expect(await h.bus.deadLetters('billing').count()).toBe(0);
  });

  it('sends a rejection notice to the producer for bad input', async () => {
    const notices: z.infer<typeof MessageRejected.schema>[] = [];
    const h = await start();
    h.bus.endpoint('billing', { rejectionAddress: 'orders.rejections' }).handle(Charge, async () => {});
    h.bus.endpoint('orders.rejections').handle(MessageRejected, (notice) => {
      notices.push(notice);
    });
    await h.start();
    await h.sendRaw('billing', {
      specversion: '1.0',
      id: 'bad-1',
      source: 'orders',
      type: Charge.type,
      time: '2026-01-01T00:00:00Z',
      data: { orderId: 'o', amount: -1 },
    });
    await h.settled();
    expect(notices).toEqual([
      expect.objectContaining({
        messageId: 'bad-1',
        messageType: Charge.type,
        endpoint: 'billing',
        reason: 'schema-violation',
      }),
    ]);
    expect(notices[0]?.description).toMatch(/data\.amount: Too small/);
  });

  it('redrives a dead letter that then succeeds once, with the attempt count reset', async () => {
    let fixed = false;
    const succeeded: number[] = [];
    const h = await charging({ retry: { kind: 'none' } }, async (_m, ctx) => {
      if (!fixed) throw new Error('bug');
      succeeded.push(ctx.attempt);
    });
    await h.send('billing', Charge, { orderId: 'o1', amount: 5 });
    await h.settled();
    const dlq = h.bus.deadLetters('billing');
    expect(await dlq.count()).toBe(1);
    fixed = true;
    const result = await dlq.redrive({ all: true }, 'bug fixed in 1.2.3');
    expect(result.moved).toBe(1);
    await h.settled();
    expect(succeeded).toEqual([1]);
    expect(await dlq.count()).toBe(0);
  });
});
