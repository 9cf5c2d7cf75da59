import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, defineMessage, type MessageContext, type MessageOf } from '../../src/index.js';

const OrderPlaced = defineMessage(
  'orders.order-placed.v1',
  z.object({ orderId: z.string(), total: z.number(), placedAt: z.string().transform((s) => new Date(s)) }),
);
const OrderCancelled = defineMessage(
  'orders.order-cancelled.v1',
  z.object({ orderId: z.string(), reason: z.string() }),
);

// These run only through the type checker (`npm run typecheck`, part of `npm test`); the
// expect-error lines fail the typecheck if the mistake they show ever compiles.
describe('typed handlers', () => {
  it('infers the handler message type from the contract schema (output side)', () => {
    expectTypeOf<MessageOf<typeof OrderPlaced>>().toEqualTypeOf<{ orderId: string; total: number; placedAt: Date }>();
    const bus = createBus({});
    bus.endpoint('billing').handle(OrderPlaced, (order, ctx) => {
      expectTypeOf(order.placedAt).toEqualTypeOf<Date>();
      expectTypeOf(ctx).toEqualTypeOf<MessageContext<MessageOf<typeof OrderPlaced>, undefined>>();
      expectTypeOf(ctx.envelope.data.orderId).toEqualTypeOf<string>();
      expectTypeOf(ctx.tx).toEqualTypeOf<undefined>();
    });
  });

  it('does not compile a handler whose message type does not fit its contract', () => {
    const bus = createBus({});
    // @ts-expect-error the handler expects a cancellation, the contract delivers an order
    bus.endpoint('a').handle(OrderPlaced, (m: MessageOf<typeof OrderCancelled>) => m.reason);
    // @ts-expect-error a property the schema does not have
    bus.endpoint('b').handle(OrderPlaced, (m) => m.customerId);
    // @ts-expect-error handlers return void or a promise of void, not a value to ack with
    bus.endpoint('c').handle(OrderPlaced, async () => 'ack');
  });

  it('checks publish and send data against the schema input side', async () => {
    const bus: Bus = createBus({});
    const publish = () => bus.publish(OrderPlaced, { orderId: 'o', total: 1, placedAt: '2026-11-22T10:00:00Z' });
    expectTypeOf(publish).returns.toEqualTypeOf<Promise<string>>();
    // @ts-expect-error total must be a number
    const wrong = () => bus.publish(OrderPlaced, { orderId: 'o', total: '1', placedAt: '' });
    // @ts-expect-error missing field
    const missing = () => bus.send('billing', OrderCancelled, { orderId: 'o' });
    void wrong;
    void missing;
  });

  it('types publish from inside a handler by the contract it names', () => {
    const bus = createBus({});
    bus.endpoint('d').handle(OrderPlaced, async (order, ctx) => {
      await ctx.publish(OrderCancelled, { orderId: order.orderId, reason: 'x' });
      // @ts-expect-error reason is required
      await ctx.publish(OrderCancelled, { orderId: order.orderId });
    });
  });
});
