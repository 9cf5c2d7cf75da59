import { Writable } from 'node:stream';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  type BusConfigInput,
  cloudEventsCodec,
  createBus,
  createEnvelope,
  createMemoryBroker,
  defineMessage,
  type MemoryBroker,
  memoryInbox,
  memoryTransport,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { OtelHarness } from './otel-harness.js';

const OrderPlaced = defineMessage('orders.order-placed.v1', z.object({ orderId: z.string(), card: z.string() }));
const InvoiceDue = defineMessage('billing.invoice-due.v1', z.object({ orderId: z.string() }));

const byKind = (spans: ReadableSpan[], kind: SpanKind) => spans.filter((s) => s.kind === kind);
const eventNames = (span: ReadableSpan) => span.events.map((e) => e.name);

describe('tracing', () => {
  let otel: OtelHarness;
  let broker: MemoryBroker;
  const buses: Bus[] = [];
  let lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  const bus = (config: BusConfigInput = {}) => {
    const b = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 }, service: 'orders-service', ...config },
      { transports: [memoryTransport({ broker })], logger },
    );
    buses.push(b);
    return b;
  };

  beforeAll(() => {
    otel = new OtelHarness();
  });
  afterAll(async () => {
    await otel.shutdown();
  });
  beforeEach(async () => {
    await otel.reset();
    broker = createMemoryBroker();
    lines = [];
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
  });

  it('puts the producer span and the consumer span of a published message in one trace', async () => {
    const b = bus();
    b.endpoint('orders').handle(OrderPlaced, () => {});
    await b.start();
    const id = await b.publish(OrderPlaced, { orderId: 'o1', card: '4111' }, { key: 'o1', correlationId: 'c-1' });
    await waitFor(() => b.health().endpoints.orders?.counters.completed === 1);

    const spans = otel.finished();
    const [producer] = byKind(spans, SpanKind.PRODUCER);
    const [consumer] = byKind(spans, SpanKind.CONSUMER);
    expect(producer?.name).toBe('publish orders.order-placed.v1');
    expect(consumer?.name).toBe('process orders');
    expect(consumer?.spanContext().traceId).toBe(producer?.spanContext().traceId);
    expect(consumer?.parentSpanContext?.spanId).toBe(producer?.spanContext().spanId);
    expect(producer?.attributes).toMatchObject({
      'messaging.system': 'memory',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
      'messaging.message.id': id,
    });
    expect(consumer?.attributes).toMatchObject({
      'messaging.system': 'memory',
      'messaging.destination.name': 'orders',
      'messaging.operation.type': 'process',
      'messaging.consumer.group.name': 'orders',
      'messaging.message.id': id,
      'messaging.message.conversation_id': 'c-1',
      'cloudevents.event_type': 'orders.order-placed.v1',
      'cloudevents.event_subject': 'o1',
      'sluice.delivery_count': 1,
      'sluice.attempt': 1,
      'sluice.outcome': 'completed',
    });
    expect(consumer?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("makes a handler's publish a child of the consumer span", async () => {
    const b = bus();
    b.endpoint('orders').handle(OrderPlaced, async (m, ctx) => {
      await ctx.publish(InvoiceDue, { orderId: m.orderId });
    });
    b.endpoint('billing').handle(InvoiceDue, () => {});
    await b.start();
    await b.publish(OrderPlaced, { orderId: 'o2', card: '4111' });
    // Both deliveries gone: the billing message can be settled before the orders message it came
    // from (its synchronous handler is decided without a microtask turn per stage), and each
    // consumer span ends when its delivery is settled.
    await waitFor(() => {
      const { endpoints } = b.health();
      return endpoints.billing?.counters.completed === 1 && endpoints.orders?.counters.completed === 1;
    });

    const spans = otel.finished();
    const processOrders = spans.find((s) => s.name === 'process orders');
    const publishInvoice = spans.find((s) => s.name === 'publish billing.invoice-due.v1');
    const processBilling = spans.find((s) => s.name === 'process billing');
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    expect(publishInvoice?.parentSpanContext?.spanId).toBe(processOrders?.spanContext().spanId);
    expect(processBilling?.parentSpanContext?.spanId).toBe(publishInvoice?.spanContext().spanId);
  });

  it('runs a handler that waited for its turn in its own consumer span, not the one before it', async () => {
    // Concurrency 1 and one key: the first handler holds the slot until every message has arrived,
    // so the others wait and each starts when the one before it finishes. Each handler's publish
    // must be a child of its own consumer span.
    let open!: () => void;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    const b = bus();
    b.endpoint('orders', { concurrency: 1, prefetch: 8 }).handle(OrderPlaced, async (m, ctx) => {
      await opened;
      await ctx.publish(InvoiceDue, { orderId: m.orderId });
    });
    b.endpoint('billing').handle(InvoiceDue, () => {});
    await b.start();
    const ids = ['w1', 'w2', 'w3', 'w4'];
    for (const orderId of ids) await b.publish(OrderPlaced, { orderId, card: '4111' }, { key: 'one' });
    await waitFor(() => b.health().endpoints.orders?.inFlight === ids.length);
    open();
    await waitFor(() => b.health().endpoints.billing?.counters.completed === ids.length);

    const spans = otel.finished();
    const consumers = spans.filter((s) => s.name === 'process orders');
    const publishes = spans.filter((s) => s.name === 'publish billing.invoice-due.v1');
    expect(consumers).toHaveLength(ids.length);
    expect(publishes).toHaveLength(ids.length);
    for (const consumer of consumers) {
      const children = publishes.filter((p) => p.parentSpanContext?.spanId === consumer.spanContext().spanId);
      expect(children).toHaveLength(1);
      expect(children[0]?.spanContext().traceId).toBe(consumer.spanContext().traceId);
    }
  });

  it('redacts credentials in the exception events of failed attempts and of the dead letter', async () => {
    const b = bus({ endpoints: { orders: { inProcessRetryMaxDelayMs: 10 } } });
    b.endpoint('orders', { retry: { kind: 'intervals', delaysMs: [1] } }).handle(OrderPlaced, () => {
      throw new Error('cannot connect to postgres://app:p@ss w0rd-Zq@db.internal:5432/orders');
    });
    await b.start();
    await b.publish(OrderPlaced, { orderId: 'o4', card: '4111' });
    await waitFor(() => b.health().endpoints.orders?.counters.deadLettered === 1);

    const [consumer] = byKind(otel.finished(), SpanKind.CONSUMER);
    const exceptions = consumer?.events.filter((e) => e.name === 'exception') ?? [];
    expect(exceptions).toHaveLength(2);
    for (const event of exceptions) {
      expect(event.attributes?.['exception.message']).toBe(
        'cannot connect to postgres://app:***@db.internal:5432/orders',
      );
      expect(String(event.attributes?.['exception.stacktrace'])).toContain('postgres://app:***@db.internal');
    }
    expect(JSON.stringify(otel.finished().map((s) => [s.events, s.status, s.attributes]))).not.toMatch(/w0rd-Zq/);
  });

  it('records failed attempts, a redelivery and the dead letter as events and attributes', async () => {
    const b = bus({ endpoints: { orders: { inProcessRetryMaxDelayMs: 10 } } });
    b.endpoint('orders', { retry: { kind: 'intervals', delaysMs: [1, 20] } }).handle(OrderPlaced, () => {
      throw new TypeError('payment service unreachable');
    });
    await b.start();
    const id = await b.publish(OrderPlaced, { orderId: 'o3', card: '4111-1111' }, { correlationId: 'c-3' });
    await waitFor(() => b.health().endpoints.orders?.counters.deadLettered === 1);

    const spans = otel.finished();
    const [producer] = byKind(spans, SpanKind.PRODUCER);
    const consumers = byKind(spans, SpanKind.CONSUMER);
    expect(consumers).toHaveLength(2);
    const [first, second] = consumers as [ReadableSpan, ReadableSpan];
    for (const span of consumers) expect(span.parentSpanContext?.spanId).toBe(producer?.spanContext().spanId);

    // Delivery 1: attempt 1 fails and is retried in process, attempt 2 fails and goes back to the broker.
    expect(eventNames(first)).toEqual(['exception', 'sluice.retry', 'exception', 'sluice.retry']);
    expect(first.events[1]?.attributes).toEqual({ 'sluice.attempt': 1, 'sluice.retry.delay_ms': 1 });
    expect(first.events[3]?.attributes).toEqual({ 'sluice.attempt': 2, 'sluice.retry.delay_ms': 20 });
    expect(first.events[0]?.attributes).toMatchObject({
      'exception.type': 'TypeError',
      'exception.message': 'payment service unreachable',
    });
    expect(first.attributes).toMatchObject({
      'sluice.outcome': 'retry',
      'sluice.attempt': 2,
      'sluice.delivery_count': 1,
      'error.type': 'TypeError',
    });
    expect(first.status.code).toBe(SpanStatusCode.ERROR);

    // Delivery 2: attempt 3 fails, retries are exhausted, the message is dead-lettered.
    expect(eventNames(second)).toEqual(['exception', 'sluice.dead_lettered']);
    expect(second.events[1]?.attributes).toEqual({
      'sluice.outcome.reason': 'retries-exhausted',
      'sluice.attempt': 3,
    });
    expect(second.attributes).toMatchObject({
      'messaging.message.id': id,
      'sluice.outcome': 'deadLetter',
      'sluice.outcome.reason': 'retries-exhausted',
      'sluice.attempt': 3,
      'sluice.delivery_count': 2,
      'error.type': 'TypeError',
    });
    expect(second.status.code).toBe(SpanStatusCode.ERROR);

    // One log line for the final outcome, naming the message and its trace; the payload never appears.
    const deadLettered = lines.filter((l) => l.msg === 'dead-lettered');
    expect(deadLettered).toHaveLength(1);
    expect(deadLettered[0]).toMatchObject({
      level: 50,
      endpoint: 'orders',
      messageId: id,
      messageType: 'orders.order-placed.v1',
      correlationId: 'c-3',
      traceId: second.spanContext().traceId,
      spanId: second.spanContext().spanId,
      outcome: 'deadLetter',
      reason: 'retries-exhausted',
      attempts: 3,
    });
    expect(JSON.stringify(lines)).not.toContain('4111-1111');
  });

  it('records skips as events: a duplicate under the inbox', async () => {
    const b = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 }, inbox: { kind: 'memory' } },
      { transports: [memoryTransport({ broker })], logger, inbox: memoryInbox() },
    );
    buses.push(b);
    b.endpoint('orders').handle(OrderPlaced, () => {});
    await b.start();
    await b.publish(OrderPlaced, { orderId: 'o4', card: '1' }, { id: 'same-id' });
    await b.publish(OrderPlaced, { orderId: 'o4', card: '1' }, { id: 'same-id' });
    await waitFor(() => b.health().endpoints.orders?.counters.skipped === 1);

    const skipped = byKind(otel.finished(), SpanKind.CONSUMER).find(
      (s) => s.attributes['sluice.outcome'] === 'skipped',
    );
    expect(skipped?.attributes['sluice.outcome.reason']).toBe('duplicate');
    expect(skipped?.events.map((e) => [e.name, e.attributes])).toEqual([
      ['sluice.skipped', { 'sluice.outcome.reason': 'duplicate' }],
    ]);
  });

  it('takes the parent from the traceparent header when the envelope has none, and ignores a malformed one', async () => {
    const b = bus();
    b.endpoint('orders').handle(OrderPlaced, () => {});
    await b.start();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const body = (orderId: string) =>
      cloudEventsCodec.encode(createEnvelope(OrderPlaced.type, 'legacy', { orderId, card: '1' }));
    const queue = broker.queue('orders');
    queue.enqueue({
      messageId: 'h1',
      body: body('h1'),
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, tracestate: 'vendor=x' },
      key: undefined,
      deliveryCount: 0,
    });
    queue.enqueue({
      messageId: 'h2',
      body: body('h2'),
      headers: { traceparent: 'not-a-traceparent' },
      key: undefined,
      deliveryCount: 0,
    });
    await waitFor(() => b.health().endpoints.orders?.counters.completed === 2);

    const [fromHeader, malformed] = byKind(otel.finished(), SpanKind.CONSUMER);
    expect(fromHeader?.spanContext().traceId).toBe(traceId);
    expect(fromHeader?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(fromHeader?.spanContext().traceState?.get('vendor')).toBe('x');
    expect(malformed?.parentSpanContext).toBeUndefined();
    expect(malformed?.attributes['sluice.outcome']).toBe('completed');
  });

  it('gives bad input a consumer span with the dead-letter reason', async () => {
    const b = bus();
    b.endpoint('orders').handle(OrderPlaced, () => {});
    await b.start();
    broker.queue('orders').enqueue({
      messageId: 'bad',
      body: Buffer.from('{not json'),
      headers: {},
      key: undefined,
      deliveryCount: 0,
    });
    await waitFor(() => b.health().endpoints.orders?.counters.deadLettered === 1);
    const [span] = byKind(otel.finished(), SpanKind.CONSUMER);
    expect(span?.attributes).toMatchObject({ 'sluice.outcome': 'deadLetter', 'sluice.outcome.reason': 'undecodable' });
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
  });
});
