// The outbox's telemetry with the OpenTelemetry SDK registered: a dispatch span is a child of the
// span that wrote the row (from the handler's consumer span), and the outbox gauges are reported.
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, createMemoryBroker, defineMessage, memoryInbox, memoryTransport } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { OtelHarness } from '../observability/otel-harness.js';

const PlaceOrder = defineMessage('tel.place-order.v1', z.object({ order: z.string() }));
const OrderPlaced = defineMessage('tel.order-placed.v1', z.object({ order: z.string() }));

let otel: OtelHarness;
beforeAll(async () => {
  otel = new OtelHarness();
  await otel.reset();
});
afterAll(async () => {
  await otel.shutdown();
});

it('dispatches under the producer’s trace, and reports depth, oldest age and moved-aside rows as gauges', async () => {
  const bus = createBus(
    { shutdown: { signals: [] }, inbox: { kind: 'memory' }, outbox: { statsIntervalMs: 100 } },
    {
      inbox: memoryInbox(),
      transports: [memoryTransport({ broker: createMemoryBroker() })],
      logger: pino({ level: 'silent' }),
    },
  );
  const seen: string[] = [];
  bus.endpoint('audit', { inbox: false }).handle(OrderPlaced, async (m) => {
    seen.push(m.order);
  });
  bus.endpoint('orders').handle(PlaceOrder, async (m, ctx) => {
    await ctx.publish(OrderPlaced, { order: m.order });
  });
  await bus.start();
  try {
    await bus.send('orders', PlaceOrder, { order: 'o-1' });
    await waitFor(() => seen.length === 1);
    await waitFor(() =>
      otel
        .finished()
        .some((s) => s.name === `publish ${OrderPlaced.type}` && s.attributes['sluice.outbox.attempt'] === 1),
    );
    const spans = otel.finished();
    const dispatch = spans.find((s) => s.attributes['sluice.outbox.attempt'] === 1);
    // The span that wrote the row (ctx.publish) is the dispatch span's parent, in the consumer's trace.
    const written = spans.find(
      (s) => s.name === `publish ${OrderPlaced.type}` && s.attributes['sluice.outbox.attempt'] === undefined,
    );
    expect(written).toBeDefined();
    expect(dispatch?.parentSpanContext?.spanId).toBe(written?.spanContext().spanId);
    expect(dispatch?.spanContext().traceId).toBe(written?.spanContext().traceId);
    // The row is marked dispatched within the marks' linger (MARK_LINGER_MS) after its confirmation.
    await waitFor(async () => {
      await bus.outbox?.refresh();
      return (await otel.points('sluice.outbox.depth'))[''] === 0;
    });
    expect(await otel.points('sluice.outbox.depth')).toEqual({ '': 0 });
    expect(await otel.points('sluice.outbox.moved_aside')).toEqual({ '': 0 });
    expect(Object.keys(await otel.points('sluice.outbox.oldest_age'))).toEqual(['']);
  } finally {
    await bus.stop();
  }
});
