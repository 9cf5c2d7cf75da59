import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  cloudEventsCodec,
  createBus,
  createEnvelope,
  createMemoryBroker,
  defineMessage,
  type MemoryBroker,
  memoryInbox,
  memoryTransport,
  PermanentError,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { OtelHarness } from './otel-harness.js';

const Order = defineMessage('orders.order-placed.v1', z.object({ orderId: z.string(), mode: z.string() }));
const silent = pino({ level: 'silent' });

describe('metrics', () => {
  let otel: OtelHarness;
  let broker: MemoryBroker;
  const buses: Bus[] = [];

  beforeAll(() => {
    otel = new OtelHarness();
  });
  afterAll(async () => {
    await otel.shutdown();
  });
  beforeEach(async () => {
    await otel.reset();
    broker = createMemoryBroker();
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
  });

  const raw = (messageId: string, type: string, data: unknown) =>
    broker.queue('orders').enqueue({
      messageId,
      body: cloudEventsCodec.encode(createEnvelope(type, 'legacy', data, { id: messageId })),
      headers: {},
      key: undefined,
      deliveryCount: 0,
    });

  it('counts every outcome of a mixed stream as the endpoint does', async () => {
    const b = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 }, inbox: { kind: 'memory' } },
      { transports: [memoryTransport({ broker })], logger: silent, inbox: memoryInbox() },
    );
    buses.push(b);
    b.endpoint('orders', { unknownTypes: 'ignore', retry: { kind: 'none' } }).handle(Order, (m, ctx) => {
      if (m.mode === 'permanent') throw new PermanentError('card declined');
      if (m.mode === 'later' && ctx.attempt === 1) ctx.retryLater(5, 'not yet');
    });
    await b.start();
    const counters = () => b.health().endpoints.orders?.counters;

    for (let i = 0; i < 5; i++) await b.publish(Order, { orderId: `o${i}`, mode: 'ok' }, { id: `ok-${i}` });
    await waitFor(() => counters()?.completed === 5);
    for (let i = 0; i < 2; i++) await b.publish(Order, { orderId: `o${i}`, mode: 'ok' }, { id: `ok-${i}` });
    await b.publish(Order, { orderId: 'p', mode: 'permanent' });
    await b.publish(Order, { orderId: 'l', mode: 'later' });
    raw('unknown', 'other.thing.v1', {});
    raw('invalid', Order.type, { orderId: 5 });
    await waitFor(() => {
      const c = counters();
      return c?.completed === 6 && c.skipped === 3 && c.deadLettered === 2 && c.retried === 1;
    });

    const c = counters()!;
    const outcomes = await otel.points('sluice.message.outcomes', 'sluice.outcome', 'sluice.outcome.reason');
    expect(outcomes).toEqual({
      'completed|': c.completed,
      'skipped|duplicate': c.skippedByReason.duplicate,
      'skipped|unknown-type': c.skippedByReason['unknown-type'],
      'retry|': c.retried,
      'deadLetter|permanent-failure': 1,
      'deadLetter|schema-violation': 1,
    });
    expect(outcomes).toEqual({
      'completed|': 6,
      'skipped|duplicate': 2,
      'skipped|unknown-type': 1,
      'retry|': 1,
      'deadLetter|permanent-failure': 1,
      'deadLetter|schema-violation': 1,
    });
    expect(c.received).toBe(12);
    expect(await otel.points('messaging.client.consumed.messages', 'messaging.consumer.group.name')).toEqual({
      orders: c.received,
    });
    expect(await otel.histogramCount('messaging.process.duration')).toBe(c.received);
    expect(await otel.points('messaging.client.sent.messages', 'messaging.operation.name', 'error.type')).toEqual({
      'publish|': 9,
    });
    expect(await otel.points('sluice.consumer.in_flight', 'messaging.consumer.group.name')).toEqual({ orders: 0 });
    expect(await otel.points('sluice.message.settle_failures')).toEqual({});
  });

  it('reports the kill switch state as a gauge', async () => {
    const b = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 } },
      { transports: [memoryTransport({ broker })], logger: silent },
    );
    buses.push(b);
    b.endpoint('orders').handle(Order, () => {});
    await b.start();
    const state = () =>
      otel.points('sluice.kill_switch.state', 'messaging.consumer.group.name', 'sluice.kill_switch.state');
    expect(await state()).toEqual({ 'orders|closed': 1, 'orders|tripped': 0, 'orders|probing': 0 });
    b.killSwitch('orders').trip('maintenance');
    expect(await state()).toEqual({ 'orders|closed': 0, 'orders|tripped': 1, 'orders|probing': 0 });
  });
});
