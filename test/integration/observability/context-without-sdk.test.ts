// Without a tracing SDK but with a context manager (an application that propagates trace context
// without recording spans), a delivery that carries trace context runs its handler in that context,
// and one without runs in the root context: when its turn starts inside the callback of one that had
// it (concurrency 1: the second waits for the first), and when the turn is started from inside
// another delivery's context (the turn's first stage puts it back in the root context).
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  cloudEventsCodec,
  createBus,
  createEnvelope,
  createMemoryBroker,
  defineMessage,
  memoryTransport,
} from '../../../src/index.js';
import type { ValidatedContext } from '../../../src/pipeline/context.js';
import { COMPLETED } from '../../../src/pipeline/outcome.js';
import { activateSpanStage } from '../../../src/pipeline/stages/trace-stage.js';
import { waitFor } from '../../support/wait-for.js';

const OrderPlaced = defineMessage('orders.order-placed.v1', z.object({ orderId: z.string() }));
const InvoiceDue = defineMessage('billing.invoice-due.v1', z.object({ orderId: z.string() }));

describe('trace context without an SDK', () => {
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  afterAll(() => {
    context.disable();
  });

  it('does not hand the context of the message before to one that waited for its turn and had none', async () => {
    const broker = createMemoryBroker();
    const bus = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 }, logging: { level: 'silent' } },
      { transports: [memoryTransport({ broker })], logger: pino({ level: 'silent' }) },
    );
    let open!: () => void;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    bus.endpoint('orders', { concurrency: 1, prefetch: 8 }).handle(OrderPlaced, async (m, ctx) => {
      if (m.orderId === 'traced') await opened;
      await ctx.publish(InvoiceDue, { orderId: m.orderId });
    });
    const invoices = new Map<string, string | undefined>();
    bus.endpoint('billing').handle(InvoiceDue, (m, ctx) => {
      invoices.set(m.orderId, ctx.envelope.traceparent);
    });
    await bus.start();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const queue = broker.queue('orders');
    for (const [orderId, headers] of [
      ['traced', { traceparent: `00-${traceId}-00f067aa0ba902b7-01` }],
      ['untraced', {}],
    ] as const) {
      queue.enqueue({
        messageId: orderId,
        body: cloudEventsCodec.encode(createEnvelope(OrderPlaced.type, 'legacy', { orderId })),
        headers,
        key: undefined,
        deliveryCount: 0,
      });
    }
    await waitFor(() => bus.health().endpoints.orders?.inFlight === 2);
    open();
    await waitFor(() => invoices.size === 2);
    await bus.stop();

    expect(invoices.get('traced')).toMatch(new RegExp(`^00-${traceId}-`));
    expect(invoices.get('untraced')).toBeUndefined();
  });

  it('runs a turn without trace context in the root context, whatever context it was started from', () => {
    const stage = activateSpanStage();
    const carrying = (traceparentSpan: string | undefined) =>
      ({
        span: traceparentSpan
          ? trace.wrapSpanContext({
              traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
              spanId: traceparentSpan,
              traceFlags: 1,
            })
          : trace.wrapSpanContext({
              traceId: '00000000000000000000000000000000',
              spanId: '0000000000000000',
              traceFlags: 0,
            }),
      }) as unknown as ValidatedContext;
    const activeSpanId = () => trace.getSpan(context.active())?.spanContext().spanId;
    const seen: (string | undefined)[] = [];
    const next = () => {
      seen.push(activeSpanId());
      return COMPLETED;
    };
    // A turn with a valid span runs with it active.
    stage(carrying('00f067aa0ba902b7'), next);
    // A turn without one, started inside another delivery's context (the callback of a turn that
    // had one, a transport's pump scheduled from a handler), runs in the root context.
    const other = trace.setSpan(
      ROOT_CONTEXT,
      trace.wrapSpanContext({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '1111111111111111', traceFlags: 1 }),
    );
    context.with(other, () => stage(carrying(undefined), next));
    expect(seen).toEqual(['00f067aa0ba902b7', undefined]);
  });
});
