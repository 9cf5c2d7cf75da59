import type Database from 'better-sqlite3';
import type pg from 'pg';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineMessage, memoryInbox, type TransactionScope } from '../../src/index.js';
import { postgresInbox } from '../../src/inbox/postgres/index.js';
import { sqliteInbox } from '../../src/inbox/sqlite/index.js';

const OrderPlaced = defineMessage('types.order-placed.v1', z.object({ orderId: z.string(), total: z.number() }));

// Checked by the type checker only (`npm run typecheck`).
describe('bus.transaction types', () => {
  it('hands the work the store’s transaction type, as ctx.tx is typed', () => {
    const onPostgres = createBus(
      { inbox: { kind: 'postgres', connectionString: 'postgres://x' } },
      { inbox: postgresInbox() },
    );
    const onSqlite = createBus({}, { inbox: sqliteInbox() });
    const inMemory = createBus({}, { inbox: memoryInbox() });
    // Never called: the buses are not started; the type checker reads the callbacks.
    const typed = [
      () =>
        onPostgres.transaction(async (scope) => {
          expectTypeOf(scope).toEqualTypeOf<TransactionScope<pg.PoolClient>>();
          expectTypeOf(scope.tx).toEqualTypeOf<pg.PoolClient>();
        }),
      () => onSqlite.transaction(async ({ tx }) => expectTypeOf(tx).toEqualTypeOf<Database.Database>()),
      () => inMemory.transaction(async ({ tx }) => expectTypeOf(tx).toEqualTypeOf<undefined>()),
    ];
    expectTypeOf(typed).toBeArray();
  });

  it('returns what the work returns, and resolves publish to the message id', () => {
    const bus = createBus({}, { inbox: memoryInbox() });
    const run = () =>
      bus.transaction(async ({ publish }) => {
        const id = await publish(OrderPlaced, { orderId: 'o-1', total: 1 });
        expectTypeOf(id).toEqualTypeOf<string>();
        return { orderId: 'o-1', announced: id };
      });
    expectTypeOf(run).returns.toEqualTypeOf<Promise<{ orderId: string; announced: string }>>();
  });

  it('checks what is published against the contract', () => {
    const bus = createBus({}, { inbox: memoryInbox() });
    const run = () =>
      bus.transaction(async ({ publish, send }) => {
        // @ts-expect-error total must be a number
        await publish(OrderPlaced, { orderId: 'o-1', total: 'one' });
        // @ts-expect-error send names the endpoint first
        await send(OrderPlaced, { orderId: 'o-1', total: 1 });
      });
    expectTypeOf(run).toBeFunction();
  });
});
