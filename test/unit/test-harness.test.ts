import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DependencyError, defineMessage, memoryInbox, MessageRejected } from '../../src/index.js';
import { sqliteInbox } from '../../src/inbox/sqlite/index.js';
import { createTestHarness, NotSettledError, type TestHarnessOptions } from '../../src/testing/index.js';

/**
 * `sluice/testing` (issue 17): a bus on the memory broker in virtual time, settled without polling
 * or sleeping, with typed records. The virtual-time cases also prove that every wait on the message
 * path runs on the injected clock: one left on a real timer makes `settled()` time out (or the
 * virtual clock run ahead of it until a lock expires).
 */
const OrderPlaced = defineMessage(
  'orders.order-placed.v1',
  z.object({ orderId: z.string().min(1), lines: z.number().int().positive().default(1) }),
);
const ShipmentBooked = defineMessage('shipping.shipment-booked.v1', z.object({ orderId: z.string() }));
const PickingRequested = defineMessage('warehouse.picking-requested.v1', z.object({ orderId: z.string() }));
const EntityUpdated = defineMessage('test.entity-updated.v1', z.object({ value: z.number() }));

const START = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

describe('sluice/testing', () => {
  const harnesses: { stop(): Promise<void> }[] = [];
  const harness = <TTx = undefined>(options: TestHarnessOptions<TTx> = {}) => {
    const h = createTestHarness<TTx>({ startAt: START, ...options });
    harnesses.push(h);
    return h;
  };
  afterEach(async () => {
    await Promise.all(harnesses.splice(0).map((h) => h.stop()));
  });

  describe('records, typed by the contracts', () => {
    it('shows what a handler consumed, published and sent, read through their contracts', async () => {
      const h = harness();
      h.bus.endpoint('shipping').handle(OrderPlaced, async (order, ctx) => {
        await ctx.publish(ShipmentBooked, { orderId: order.orderId });
        await ctx.send('warehouse', PickingRequested, { orderId: order.orderId });
      });
      await h.start();
      const id = await h.publish(OrderPlaced, { orderId: 'o-1' });
      await h.settled();

      expect(h.consumed(OrderPlaced)).toEqual([
        expect.objectContaining({
          endpoint: 'shipping',
          instance: 0,
          message: { orderId: 'o-1', lines: 1 },
          attempt: 1,
        }),
      ]);
      expect(h.consumed(OrderPlaced)[0]?.envelope.id).toBe(id);
      // What the test published is there too; a handler's publish is caused by the message it handled.
      expect(h.published(OrderPlaced).map((p) => p.message)).toEqual([{ orderId: 'o-1', lines: 1 }]);
      const [booked] = h.published(ShipmentBooked);
      expect(booked?.message).toEqual({ orderId: 'o-1' });
      expect(booked?.envelope.causationId).toBe(id);
      // A message to another service's queue: sent, and nothing in this test consumes it, yet settled.
      expect(h.sent(PickingRequested)).toEqual([
        expect.objectContaining({ kind: 'send', address: 'warehouse', message: { orderId: 'o-1' } }),
      ]);
      expect(h.broker.queue('warehouse').readyCount).toBe(1);
      expect(h.deadLettered()).toEqual([]);
    });

    it('dead-letters bad input with its fault, and skips a duplicate the inbox recognises', async () => {
      const h = harness({
        inbox: memoryInbox(),
        config: { endpoints: { shipping: { rejectionAddress: 'orders.rejections' } } },
      });
      h.bus.endpoint('shipping').handle(OrderPlaced, async () => {});
      await h.start();
      await h.sendRaw('shipping', '{"specversion":"1.0", "id": "garbled"');
      await h.sendRaw('shipping', {
        specversion: '1.0',
        id: 'bad-1',
        source: 'legacy',
        type: OrderPlaced.type,
        time: '2030-01-01T00:00:00Z',
        data: { orderId: '' },
      });
      await h.send('shipping', OrderPlaced, { orderId: 'o-2' }, { id: 'same' });
      await h.send('shipping', OrderPlaced, { orderId: 'o-2' }, { id: 'same' });
      await h.settled();

      expect(h.deadLettered().map((d) => d.fault.reason)).toEqual(['undecodable', 'schema-violation']);
      const [invalid] = h.deadLettered(OrderPlaced);
      expect(invalid?.fault).toMatchObject({ reason: 'schema-violation', attempts: 0, messageId: 'bad-1' });
      expect(invalid?.fault.description).toMatch(/data\.orderId/);
      expect(invalid?.message).toBeUndefined();
      expect(invalid?.fault.lastFailureAt).toBe(iso(START));
      expect(h.skipped(OrderPlaced)).toEqual([expect.objectContaining({ reason: 'duplicate' })]);
      expect(h.consumed(OrderPlaced)).toHaveLength(1);
      // The producer is told about its bad message (a rejection notice is a send).
      expect(h.sent(MessageRejected).map((n) => n.message.reason)).toEqual(['undecodable', 'schema-violation']);
    });

    it('types ctx.tx from the SQLite inbox, on a throwaway database', async () => {
      const h = harness({ inbox: sqliteInbox() });
      const booked: string[] = [];
      h.bus.endpoint('shipping').handle(OrderPlaced, (order, ctx) => {
        ctx.tx.exec('CREATE TABLE IF NOT EXISTS shipments (order_id TEXT)');
        ctx.tx.prepare('INSERT INTO shipments VALUES (?)').run(order.orderId);
        booked.push(order.orderId);
      });
      await h.start();
      await h.send('shipping', OrderPlaced, { orderId: 'o-3' }, { id: 'm-3' });
      await h.send('shipping', OrderPlaced, { orderId: 'o-3' }, { id: 'm-3' });
      await h.settled();
      expect(booked).toEqual(['o-3']);
      expect(h.skipped()).toEqual([expect.objectContaining({ reason: 'duplicate' })]);
      expect((await h.bus.inbox?.find('shipping', 'm-3'))?.processedAt.toISOString()).toBe(iso(START));
    });
  });

  describe('virtual time', () => {
    it('redelivers after a one-hour retry delay in milliseconds, keeping the attempt count', async () => {
      const h = harness();
      h.bus
        .endpoint('shipping', { retry: { kind: 'intervals', delaysMs: [HOUR] } })
        .handle(OrderPlaced, async (_order, ctx) => {
          if (ctx.attempt === 1) throw new Error('warehouse API down');
        });
      await h.start();
      await h.publish(OrderPlaced, { orderId: 'o-1' });
      await h.settled();
      expect(h.consumed(OrderPlaced)).toEqual([expect.objectContaining({ attempt: 2, deliveryCount: 2 })]);
      expect(h.outcomes.map((o) => o.outcome?.kind)).toEqual(['retry', 'completed']);
      expect(h.clock?.now()).toBe(START + HOUR);
    });

    it('waits an in-process retry on the clock, holding the lock, in one delivery', async () => {
      // inProcessRetryMaxDelayMs is 5 s: a 4 s delay is waited in process, renewing the lock.
      const h = harness({ config: { transport: { kind: 'memory', lockTimeoutMs: 1_000 } } });
      h.bus
        .endpoint('shipping', { retry: { kind: 'intervals', delaysMs: [4_000] } })
        .handle(OrderPlaced, async (_order, ctx) => {
          if (ctx.attempt === 1) throw new Error('flaky');
        });
      await h.start();
      await h.publish(OrderPlaced, { orderId: 'o-1' });
      await h.settled();
      // Four lock timeouts of virtual time, the lock renewed on the same clock: never lost.
      expect(h.consumed(OrderPlaced)).toEqual([expect.objectContaining({ attempt: 2, deliveryCount: 1 })]);
      expect(h.outcomes).toHaveLength(1);
      expect(h.clock?.now()).toBe(START + 4_000);
    });

    it("keeps a key's order while its first message waits for an in-process retry", async () => {
      const h = harness();
      const handled: string[] = [];
      h.bus
        .endpoint('shipping', { concurrency: 4, orderBy: 'key', retry: { kind: 'intervals', delaysMs: [2_000] } })
        .handle(OrderPlaced, async (order, ctx) => {
          if (order.orderId === 'first' && ctx.attempt === 1) throw new Error('flaky');
          handled.push(order.orderId);
        });
      await h.start();
      // The second waits for its key's turn behind the first, which waits for the clock.
      await h.send('shipping', OrderPlaced, { orderId: 'first' }, { key: 'customer-7' });
      await h.send('shipping', OrderPlaced, { orderId: 'second' }, { key: 'customer-7' });
      await h.send('shipping', OrderPlaced, { orderId: 'other' }, { key: 'customer-8' });
      await h.settled();
      expect(handled).toEqual(['other', 'first', 'second']);
      expect(h.clock?.now()).toBe(START + 2_000);
    });

    it('dead-letters with the fault times of the clock after retries exhausted', async () => {
      const h = harness();
      h.bus
        .endpoint('shipping', { retry: { kind: 'intervals', delaysMs: [HOUR, 2 * HOUR] } })
        .handle(OrderPlaced, async () => {
          throw new RangeError('no such warehouse');
        });
      await h.start();
      await h.publish(OrderPlaced, { orderId: 'o-1' });
      await h.settled();
      const [dead] = h.deadLettered(OrderPlaced);
      expect(dead?.message).toEqual({ orderId: 'o-1', lines: 1 });
      expect(dead?.fault).toMatchObject({
        reason: 'retries-exhausted',
        attempts: 3,
        errorName: 'RangeError',
        firstFailureAt: iso(START),
        lastFailureAt: iso(START + 3 * HOUR),
      });
    });

    it('honours ctx.retryLater() of an hour, and a dependency backoff, on the clock', async () => {
      const h = harness();
      let downstreamUp = false;
      h.bus
        .endpoint('shipping', { dependencyBackoffMs: { initial: 60_000, factor: 2, max: 600_000 } })
        .handle(OrderPlaced, async (order, ctx) => {
          if (order.orderId === 'later' && ctx.attempt === 1) ctx.retryLater(HOUR, 'stock arrives at noon');
          if (order.orderId === 'dependency' && !downstreamUp) {
            downstreamUp = true;
            throw new DependencyError('carrier API: 503', { dependency: 'carrier-api' });
          }
        });
      await h.start();
      await h.publish(OrderPlaced, { orderId: 'later' });
      await h.publish(OrderPlaced, { orderId: 'dependency' });
      await h.settled();
      const runs = h.outcomes.map((o) => [(o.message as { orderId: string }).orderId, o.outcome?.kind, o.attempt]);
      expect(runs).toEqual([
        ['later', 'retry', 1],
        ['dependency', 'released', 1],
        ['dependency', 'completed', 1],
        ['later', 'completed', 2],
      ]);
      expect(h.clock?.now()).toBe(START + HOUR);
    });

    it('trips the kill switch, waits its restart delay, probes and closes, in virtual time', async () => {
      const h = harness();
      let databaseUp = false;
      h.bus
        .endpoint('ledger', {
          retry: { kind: 'none' },
          killSwitch: { consecutiveFailures: 3, restartDelayMs: { initial: 10 * 60_000, factor: 2, max: HOUR } },
        })
        .handle(OrderPlaced, async () => {
          if (!databaseUp) throw new Error('connect ECONNREFUSED 10.0.0.5:5432');
        });
      const events: string[] = [];
      for (const name of ['killswitch.tripped', 'killswitch.probing', 'killswitch.closed'] as const) {
        h.bus.on(name, (change) => {
          events.push(`${name} at +${Date.parse(change.at) - START}`);
          if (name === 'killswitch.tripped' && change.consecutiveTrips === 2) databaseUp = true;
        });
      }
      await h.start();
      for (let n = 0; n < 10; n++) await h.send('ledger', OrderPlaced, { orderId: `o-${n}` });
      await h.settled();
      // Three failures trip it; the first probe fails (trip 2: 20 min); the second probe succeeds.
      expect(events).toEqual([
        'killswitch.tripped at +0',
        `killswitch.probing at +${10 * 60_000}`,
        `killswitch.tripped at +${10 * 60_000}`,
        `killswitch.probing at +${30 * 60_000}`,
        `killswitch.closed at +${30 * 60_000}`,
      ]);
      expect(h.deadLettered()).toHaveLength(3);
      expect(h.consumed(OrderPlaced)).toHaveLength(7);
      expect(h.bus.killSwitch('ledger').state).toBe('closed');
    });

    it('probes while the other messages wait for the verdict, the probe itself waiting for group commit', async () => {
      const h = harness({
        inbox: memoryInbox(),
        config: {
          endpoints: {
            ledger: {
              concurrency: 4,
              retry: { kind: 'none' },
              groupCommit: { maxMessages: 10, maxWaitMs: 200 },
              killSwitch: { consecutiveFailures: 2, restartDelayMs: { initial: 60_000 } },
            },
          },
        },
      });
      let databaseUp = false;
      h.bus.endpoint('ledger').handle(OrderPlaced, async () => {
        if (!databaseUp) throw new Error('database down');
      });
      h.bus.on('killswitch.tripped', () => {
        databaseUp = true;
      });
      await h.start();
      for (let n = 0; n < 8; n++) await h.send('ledger', OrderPlaced, { orderId: `o-${n}` });
      await h.settled();
      expect(h.bus.killSwitch('ledger').view()).toMatchObject({ state: 'closed', trips: 1 });
      expect(h.deadLettered().length + h.consumed().length).toBe(8);
      expect(h.deadLettered().length).toBeLessThanOrEqual(2);
    });

    it('steps to the restart of a kill switch with advance(), and holds what an operator tripped', async () => {
      const h = harness();
      h.bus
        .endpoint('ledger', {
          retry: { kind: 'none' },
          killSwitch: { consecutiveFailures: 1, restartDelayMs: { initial: 60_000 } },
        })
        .handle(OrderPlaced, async (order) => {
          if (order.orderId === 'poison') throw new Error('poison');
        });
      await h.start();
      await h.send('ledger', OrderPlaced, { orderId: 'poison' });
      await h.advance(0);
      expect(h.bus.killSwitch('ledger').state).toBe('tripped');
      await h.send('ledger', OrderPlaced, { orderId: 'o-1' });
      await h.advance(59_999);
      expect(h.bus.killSwitch('ledger').state).toBe('tripped');
      expect(h.consumed()).toHaveLength(0);
      await h.advance(1);
      expect(h.bus.killSwitch('ledger').state).toBe('closed');
      expect(h.consumed()).toHaveLength(1);

      // Tripped by hand: its messages wait for a reset, and the bus counts as settled meanwhile.
      h.bus.killSwitch('ledger').trip('maintenance');
      await h.send('ledger', OrderPlaced, { orderId: 'o-2' });
      await h.settled();
      expect(h.consumed()).toHaveLength(1);
      expect(h.broker.queue('ledger').readyCount).toBe(1);
      h.bus.killSwitch('ledger').reset();
      await h.settled();
      expect(h.consumed()).toHaveLength(2);
    });

    it("judges ordering's future skew by the clock, and stamps what the bus sends by it", async () => {
      // A clock years behind the real one: a stamp taken from the real clock would be far in its future.
      const past = Date.parse('2020-06-01T00:00:00Z');
      const h = harness({
        startAt: past,
        inbox: memoryInbox(),
        config: {
          endpoints: { entities: { ordering: { enabled: true, futureSkewMs: 5 * 60_000, futurePolicy: 'reject' } } },
        },
      });
      h.bus.endpoint('entities').handle(EntityUpdated, async () => {});
      await h.start();
      await h.send('entities', EntityUpdated, { value: 1 }, { key: 'k1' });
      await h.send('entities', EntityUpdated, { value: 2 }, { key: 'k2', occurredAt: iso(past + 4 * 60_000) });
      await h.send('entities', EntityUpdated, { value: 3 }, { key: 'k3', occurredAt: iso(past + 6 * 60_000) });
      await h.settled();
      expect(h.sent(EntityUpdated)).toHaveLength(3);
      expect(h.sent(EntityUpdated)[0]?.envelope.occurredAt).toBe(iso(past));
      expect(h.consumed(EntityUpdated).map((c) => c.message.value)).toEqual([1, 2]);
      expect(h.deadLettered(EntityUpdated)).toEqual([
        expect.objectContaining({
          fault: expect.objectContaining({ reason: 'future-timestamp', messageId: expect.any(String) }),
        }),
      ]);
    });

    it('keeps a tombstone for its retention in virtual time, then lets an older update through', async () => {
      const h = harness({
        inbox: memoryInbox(),
        config: {
          inbox: { kind: 'memory', cleanupIntervalMs: HOUR },
          endpoints: { entities: { ordering: { enabled: true, tombstones: { retentionMs: 24 * HOUR } } } },
        },
      });
      const applied: number[] = [];
      h.bus.endpoint('entities').handle(EntityUpdated, async (update) => void applied.push(update.value), {
        onTombstone: async () => {},
      });
      await h.start();
      const at = (hours: number) => iso(START + hours * HOUR);
      await h.send('entities', EntityUpdated, { value: 0 }, { key: 'k', tombstone: true, occurredAt: at(0) });
      await h.send('entities', EntityUpdated, { value: 1 }, { key: 'k', occurredAt: at(-1) });
      await h.settled();
      expect(h.skipped(EntityUpdated).map((s) => s.reason)).toEqual(['stale']);
      await h.advance(23 * HOUR);
      await h.send('entities', EntityUpdated, { value: 2 }, { key: 'k', occurredAt: at(-1) });
      await h.settled();
      expect(h.skipped(EntityUpdated).map((s) => s.reason)).toEqual(['stale', 'stale']);
      // Past the retention the hourly cleanup deleted the tombstone: the late update is applied.
      await h.advance(2 * HOUR);
      await h.send('entities', EntityUpdated, { value: 3 }, { key: 'k', occurredAt: at(-1) });
      await h.settled();
      expect(applied).toEqual([3]);
    });

    it('gathers a batch for its maxWaitMs on the clock', async () => {
      const h = harness();
      const batches: number[] = [];
      h.bus
        .endpoint('shipping', { concurrency: 10 })
        .handleBatch(OrderPlaced, async (orders) => void batches.push(orders.length), {
          maxMessages: 10,
          maxWaitMs: 5_000,
        });
      await h.start();
      for (let n = 0; n < 3; n++) await h.send('shipping', OrderPlaced, { orderId: `o-${n}` });
      await h.settled();
      expect(batches).toEqual([3]);
      expect(h.clock?.now()).toBe(START + 5_000);
    });

    it("waits group commit's maxWaitMs on the clock", async () => {
      const h = harness({
        inbox: memoryInbox(),
        config: { endpoints: { shipping: { concurrency: 4, groupCommit: { maxMessages: 10, maxWaitMs: 500 } } } },
      });
      h.bus.endpoint('shipping').handle(OrderPlaced, async () => {});
      await h.start();
      for (let n = 0; n < 3; n++) await h.send('shipping', OrderPlaced, { orderId: `o-${n}` });
      await h.settled();
      expect(h.consumed(OrderPlaced)).toHaveLength(3);
      expect(h.clock?.now()).toBe(START + 500);
    });

    it('pauses between tries of a failed settlement on the clock', async () => {
      const h = harness({ config: { endpoints: { billing: { unknownTypes: 'skippedQueue' } } } });
      h.bus.endpoint('billing').handle(OrderPlaced, () => {});
      await h.start();
      h.broker.queue('billing.skipped').enqueue = () => {
        throw new Error('broker refuses the skipped queue');
      };
      await h.send('billing', ShipmentBooked, { orderId: 'o-1' });
      await h.settled();
      // Four tries, 250 + 500 + 1000 ms apart, then dead-lettered instead of cycling.
      expect(h.deadLettered().map((d) => d.fault.reason)).toEqual(['unknown-message-type']);
      expect(h.clock?.now()).toBe(START + 1_750);
    });
  });

  describe('settling', () => {
    it('does not move virtual time while a handler works, so its lock does not expire under it', async () => {
      const h = harness({ config: { transport: { kind: 'memory', lockTimeoutMs: 1_000 } } });
      h.bus
        .endpoint('shipping', { concurrency: 2, retry: { kind: 'intervals', delaysMs: [HOUR] } })
        .handle(OrderPlaced, async (order, ctx) => {
          if (order.orderId === 'later' && ctx.attempt === 1) throw new Error('not yet');
          // Real I/O: 50 ms of real time while an hour-long redelivery is due on the clock.
          if (order.orderId === 'slow') await new Promise((resolve) => setTimeout(resolve, 50));
        });
      await h.start();
      await h.send('shipping', OrderPlaced, { orderId: 'later' });
      await h.send('shipping', OrderPlaced, { orderId: 'slow' });
      await h.settled();
      const slow = h.outcomes.filter((o) => (o.message as { orderId: string }).orderId === 'slow');
      expect(slow.map((o) => [o.outcome?.kind, o.deliveryCount])).toEqual([['completed', 1]]);
      expect(h.clock?.now()).toBe(START + HOUR);
    });

    it('gives up after timeoutMs of real time, naming the handler that does not return', async () => {
      const h = harness({ timeoutMs: 100, config: { shutdown: { timeoutMs: 50 } } });
      h.bus.endpoint('shipping').handle(OrderPlaced, () => new Promise<void>(() => {}));
      await h.start();
      await h.send('shipping', OrderPlaced, { orderId: 'o-1' });
      const error = await h.settled().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotSettledError);
      expect(error).toMatchObject({ code: 'SLUICE_NOT_SETTLED', reason: 'timeout' });
      expect((error as NotSettledError).pending).toEqual([
        '1 deliveries are still working (a handler that has not returned?)',
        'endpoint "shipping": 1 deliveries in flight',
      ]);
    });

    it('gives up at the horizon of virtual time, naming what is still due', async () => {
      const h = harness({ horizonMs: 6 * HOUR });
      h.bus
        .endpoint('shipping', {
          dependencyBackoffMs: { initial: HOUR, factor: 1, max: HOUR },
          killSwitch: { dependencyFailures: false },
        })
        .handle(OrderPlaced, async () => {
          throw new DependencyError('carrier API: 503');
        });
      await h.start();
      await h.send('shipping', OrderPlaced, { orderId: 'o-1' });
      const error = await h.settled().catch((e: unknown) => e);
      expect(error).toMatchObject({ reason: 'horizon', pending: ['queue "shipping": 1 messages released for later'] });
      expect((error as Error).message).toMatch(/horizon of 21600000 ms/);
      // Never dead-lettered, however long the dependency stays down.
      expect(h.deadLettered()).toEqual([]);
      expect(h.outcomes.length).toBeGreaterThanOrEqual(6);
    });

    it('runs competing instances of a service on one broker, keeping one global attempt limit', async () => {
      const h = harness();
      const seen: number[] = [];
      const register = (bus: typeof h.bus, instance: number) =>
        bus
          .endpoint('billing', { retry: { kind: 'intervals', delaysMs: [60_000, 60_000, 60_000] } })
          .handle(OrderPlaced, async (_order, ctx) => {
            seen.push(instance);
            throw new Error(`database down (attempt ${ctx.attempt})`);
          });
      register(h.bus, 0);
      register(h.addInstance(), 1);
      await h.start();
      await h.send('billing', OrderPlaced, { orderId: 'o-1' });
      await h.settled();
      expect(h.deadLettered(OrderPlaced)[0]?.fault).toMatchObject({ reason: 'retries-exhausted', attempts: 4 });
      expect(new Set(seen)).toEqual(new Set([0, 1]));
    });
  });
});
