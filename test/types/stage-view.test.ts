import { describe, expectTypeOf, it } from 'vitest';
import type { Stage } from '../../src/pipeline/compose.js';
import type { DeliveryContext, DeliveryView, HandlerContext } from '../../src/pipeline/context.js';
import { COMPLETED } from '../../src/pipeline/outcome.js';
import type { Delivery } from '../../src/transport-core/delivery.js';
import type { FaultDetails } from '../../src/errors/fault.js';

declare const fault: FaultDetails;

// Checked by the type checker (`npm run typecheck`); the expect-error lines fail it if they compile.
describe('only the endpoint settles: stages see the delivery without its settling methods', () => {
  it('gives a stage no complete, release or deadLetter', () => {
    const stage: Stage<DeliveryContext> = async (ctx, next) => {
      // What a stage may read and do: bytes, headers, counts, and keeping its lock.
      expectTypeOf(ctx.delivery.body).toEqualTypeOf<Buffer>();
      expectTypeOf(ctx.delivery.deliveryCount).toEqualTypeOf<number>();
      expectTypeOf(ctx.delivery.renewLock).toEqualTypeOf<() => Promise<void>>();
      // @ts-expect-error a stage cannot settle: it returns an outcome, the endpoint settles it
      await ctx.delivery.complete();
      // @ts-expect-error nor give the message back
      await ctx.delivery.release({ delayMs: 0 });
      // @ts-expect-error nor dead-letter it
      await ctx.delivery.deadLetter(fault);
      return next(ctx);
    };
    expectTypeOf(stage).toBeFunction();
  });

  it('holds for the handler stage too, and for the view as a type', () => {
    const handlerStage = async (ctx: HandlerContext) => {
      // @ts-expect-error the innermost context cannot settle either
      await ctx.delivery.complete();
      return COMPLETED;
    };
    expectTypeOf(handlerStage).toBeFunction();
    expectTypeOf<DeliveryView>().not.toHaveProperty('complete');
    expectTypeOf<DeliveryView>().not.toHaveProperty('release');
    expectTypeOf<DeliveryView>().not.toHaveProperty('deadLetter');
    // The endpoint's delivery is one: a view is what it hands the stages.
    expectTypeOf<Delivery>().toMatchTypeOf<DeliveryView>();
  });
});
