import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  type BusConfigInput,
  createBus,
  createMemoryBroker,
  defineMessage,
  type EndpointOptions,
  type Handler,
  type MessageOf,
  type MemoryBroker,
  MessageRejected,
  memoryTransport,
  PermanentError,
} from '../../src/index.js';
import { waitFor } from '../support/wait-for.js';

const Charge = defineMessage('billing.charge.v1', z.object({ orderId: z.string(), amount: z.number().positive() }));
const Refund = defineMessage('billing.refund.v1', z.object({ orderId: z.string() }));
const silent = pino({ level: 'silent' });

describe('retries and dead letters', () => {
  const buses: Bus[] = [];
  let broker: MemoryBroker;
  const bus = (config: BusConfigInput = {}) => {
    const b = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 }, ...config },
      { transports: [memoryTransport({ broker })], logger: silent },
    );
    buses.push(b);
    return b;
  };
  const charging = (options: EndpointOptions, handler: Handler<MessageOf<typeof Charge>>) => {
    const b = bus();
    b.endpoint('billing', options).handle(Charge, handler);
    return b;
  };

  beforeEach(() => {
    broker = createMemoryBroker();
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
  });

  it('retries in process, counting attempts, then completes', async () => {
    const attempts: number[] = [];
    const b = charging({ retry: { kind: 'immediate', retries: 3 } }, async (_m, ctx) => {
      attempts.push(ctx.attempt);
      if (ctx.attempt < 3) throw new Error('flaky');
    });
    await b.start();
    await b.send('billing', Charge, { orderId: 'o1', amount: 5 });
    await waitFor(() => b.health().endpoints.billing?.counters.completed === 1);
    expect(attempts).toEqual([1, 2, 3]);
    expect(b.health().endpoints.billing?.counters.retried).toBe(0);
  });

  it('hands long waits to the broker and keeps the attempt count across the redelivery', async () => {
    const seen: { attempt: number; deliveryCount: number }[] = [];
    const b = charging(
      { retry: { kind: 'intervals', delaysMs: [10, 150] }, inProcessRetryMaxDelayMs: 100 },
      async (_m, ctx) => {
        seen.push({ attempt: ctx.attempt, deliveryCount: ctx.deliveryCount });
        if (ctx.attempt < 3) throw new Error('still down');
      },
    );
    await b.start();
    await b.send('billing', Charge, { orderId: 'o1', amount: 5 });
    await waitFor(() => b.health().endpoints.billing?.counters.completed === 1);
    expect(seen).toEqual([
      { attempt: 1, deliveryCount: 1 },
      { attempt: 2, deliveryCount: 1 },
      { attempt: 3, deliveryCount: 2 },
    ]);
    expect(b.health().endpoints.billing?.counters.retried).toBe(1);
  });

  it('keeps one global attempt limit across two consumer instances', async () => {
    const seen: { instance: string; attempt: number }[] = [];
    const make = (instance: string) => {
      const b = bus();
      b.endpoint('billing', {
        retry: { kind: 'intervals', delaysMs: [20, 20, 20] },
        inProcessRetryMaxDelayMs: 0,
      }).handle(Charge, async (_m, ctx) => {
        seen.push({ instance, attempt: ctx.attempt });
        throw new Error('database down');
      });
      return b;
    };
    const a = make('a');
    const c = make('c');
    await a.start();
    await c.start();
    await a.send('billing', Charge, { orderId: 'o1', amount: 5 });
    const dlq = a.deadLetters('billing');
    await waitFor(async () => (await dlq.count()) === 1);
    expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3, 4]);
    expect(new Set(seen.map((s) => s.instance)).size).toBe(2);
    const [dead] = await dlq.peek();
    expect(dead?.fault?.attempts).toBe(4);
    expect(dead?.fault?.reason).toBe('retries-exhausted');
  });

  it('dead-letters with the full fault record next to the original bytes', async () => {
    const b = charging({ retry: { kind: 'immediate', retries: 1 } }, async () => {
      throw new RangeError('card limit exceeded');
    });
    await b.start();
    const id = await b.send('billing', Charge, { orderId: 'o1', amount: 5 }, { id: 'msg-1' });
    const dlq = b.deadLetters('billing');
    await waitFor(async () => (await dlq.count()) === 1);
    const [dead] = await dlq.peek();
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
  });

  it('never retries a PermanentError', async () => {
    let calls = 0;
    const b = charging({ retry: { kind: 'immediate', retries: 5 } }, async () => {
      calls++;
      throw new PermanentError('order was cancelled');
    });
    await b.start();
    await b.send('billing', Charge, { orderId: 'o1', amount: 5 });
    const dlq = b.deadLetters('billing');
    await waitFor(async () => (await dlq.count()) === 1);
    expect(calls).toBe(1);
    expect((await dlq.peek())[0]?.fault?.reason).toBe('permanent-failure');
  });

  it('dead-letters at once when the handler asks, and redelivers when it asks for later', async () => {
    const calls: number[] = [];
    const b = charging({}, async (m, ctx) => {
      calls.push(ctx.attempt);
      if (m.orderId === 'bad') ctx.deadLetter('customer blocked');
      if (ctx.attempt === 1) ctx.retryLater(80);
    });
    await b.start();
    await b.send('billing', Charge, { orderId: 'bad', amount: 1 });
    const dlq = b.deadLetters('billing');
    await waitFor(async () => (await dlq.count()) === 1);
    expect((await dlq.peek())[0]?.fault).toMatchObject({
      reason: 'handler-dead-lettered',
      description: 'customer blocked',
    });
    const sent = performance.now();
    await b.send('billing', Charge, { orderId: 'later', amount: 1 });
    await waitFor(() => b.health().endpoints.billing?.counters.completed === 1);
    expect(performance.now() - sent).toBeGreaterThanOrEqual(78);
    expect(calls).toEqual([1, 1, 2]);
  });

  it('lets a message type override the endpoint retry policy', async () => {
    const calls = { charge: 0, refund: 0 };
    const b = bus();
    b.endpoint('billing', { retry: { kind: 'none' } })
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
    await b.start();
    await b.send('billing', Charge, { orderId: 'o', amount: 1 });
    await b.send('billing', Refund, { orderId: 'o' });
    await waitFor(async () => (await b.deadLetters('billing').count()) === 2);
    expect(calls).toEqual({ charge: 1, refund: 3 });
  });

  it('drops a droppable message type instead of dead-lettering it', async () => {
    const b = bus();
    b.endpoint('billing', { retry: { kind: 'none' } }).handle(
      Charge,
      async () => {
        throw new Error('nobody cares');
      },
      { drop: true },
    );
    await b.start();
    await b.send('billing', Charge, { orderId: 'o', amount: 1 });
    await b.transport.send('billing', {
      messageId: 'x',
      body: Buffer.from(
        JSON.stringify({
          specversion: '1.0',
          id: 'v',
          source: 's',
          type: Charge.type,
          time: '2026-01-01T00:00:00Z',
          data: { orderId: 'o' },
        }),
      ),
      headers: {},
      contentType: 'application/json',
      key: undefined,
      messageType: Charge.type,
    });
    await waitFor(() => b.health().endpoints.billing?.counters.skipped === 2);
    expect(await b.deadLetters('billing').count()).toBe(0);
  });

  it('moves an unknown type to the skipped queue when configured', async () => {
    const b = charging({ unknownTypes: 'skippedQueue' }, async () => {});
    await b.start();
    await b.send('billing', Refund, { orderId: 'o' });
    await waitFor(() => broker.queue('billing.skipped').readyCount === 1);
    expect(await b.deadLetters('billing').count()).toBe(0);
  });

  it('sends a rejection notice to the producer for bad input', async () => {
    const notices: z.infer<typeof MessageRejected.schema>[] = [];
    const b = bus();
    b.endpoint('billing', { rejectionAddress: 'orders.rejections' }).handle(Charge, async () => {});
    b.endpoint('orders.rejections').handle(MessageRejected, (notice) => {
      notices.push(notice);
    });
    await b.start();
    const body = JSON.stringify({
      specversion: '1.0',
      id: 'bad-1',
      source: 'orders',
      type: Charge.type,
      time: '2026-01-01T00:00:00Z',
      data: { orderId: 'o', amount: -1 },
    });
    await b.transport.send('billing', {
      messageId: 'bad-1',
      body: Buffer.from(body),
      headers: {},
      contentType: 'application/json',
      key: undefined,
      messageType: Charge.type,
    });
    await waitFor(() => notices.length === 1);
    expect(notices[0]).toMatchObject({
      messageId: 'bad-1',
      messageType: Charge.type,
      endpoint: 'billing',
      reason: 'schema-violation',
    });
    expect(notices[0]?.description).toMatch(/data\.amount: Too small/);
  });

  it('redrives a dead letter that then succeeds once, with the attempt count reset', async () => {
    let fixed = false;
    const succeeded: number[] = [];
    const b = charging({ retry: { kind: 'none' } }, async (_m, ctx) => {
      if (!fixed) throw new Error('bug');
      succeeded.push(ctx.attempt);
    });
    await b.start();
    await b.send('billing', Charge, { orderId: 'o1', amount: 5 });
    const dlq = b.deadLetters('billing');
    await waitFor(async () => (await dlq.count()) === 1);
    fixed = true;
    const result = await dlq.redrive({ all: true }, 'bug fixed in 1.2.3');
    expect(result.moved).toBe(1);
    await waitFor(() => succeeded.length === 1);
    expect(succeeded).toEqual([1]);
    expect(await dlq.count()).toBe(0);
  });
});
