import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineMessage, type Envelope, memoryInbox } from '../../src/index.js';
import type { TombstoneContext } from '../../src/contracts/tombstone-handler.js';

const CustomerChanged = defineMessage(
  'crm.customer-changed.v1',
  z.object({ customerId: z.string(), name: z.string() }),
);

// Checked by the type checker (`npm run typecheck`); the expect-error lines fail it if they compile.
describe('tombstones and ordering keys in handler types', () => {
  it('never gives the normal handler an undefined message; the tombstone handler gets the key instead', () => {
    const bus = createBus({ inbox: { kind: 'memory' } }, { inbox: memoryInbox() });
    bus.endpoint('crm', { ordering: { enabled: true } }).handle(
      CustomerChanged,
      (customer, ctx) => {
        expectTypeOf(customer).toEqualTypeOf<{ customerId: string; name: string }>();
        expectTypeOf(ctx.envelope.data).toEqualTypeOf<{ customerId: string; name: string }>();
      },
      {
        orderingKey: (customer, envelope) => {
          expectTypeOf(customer).toEqualTypeOf<{ customerId: string; name: string }>();
          expectTypeOf(envelope).toEqualTypeOf<Envelope<{ customerId: string; name: string }>>();
          return customer.customerId;
        },
        onTombstone: (key, ctx) => {
          expectTypeOf(key).toEqualTypeOf<string | undefined>();
          expectTypeOf(ctx).toEqualTypeOf<TombstoneContext<undefined>>();
          // A tombstone carries no message of the contract: its data is not typed as one.
          expectTypeOf(ctx.envelope.data).toEqualTypeOf<unknown>();
        },
      },
    );
  });

  it('does not compile an ordering key that reads a field the message lacks, or options batch handlers cannot take', () => {
    const bus = createBus({});
    // @ts-expect-error no such field on the message
    bus.endpoint('a').handle(CustomerChanged, () => {}, { orderingKey: (m) => m.orderId });
    // @ts-expect-error batch handlers take no per-message tombstone handler
    bus.endpoint('b').handleBatch(CustomerChanged, () => {}, { onTombstone: () => {} });
    // @ts-expect-error a batch handler can only opt out of ordering
    bus.endpoint('c').handleBatch(CustomerChanged, () => {}, { ordering: { enabled: true } });
  });
});
