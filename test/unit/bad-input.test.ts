import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessage } from '../../src/index.js';
import { createTestHarness, type TestHarness } from '../../src/testing/index.js';

const OrderPlaced = defineMessage(
  'orders.order-placed.v1',
  z.object({ orderId: z.string(), lines: z.array(z.object({ qty: z.number().int().positive() })) }),
);

const event = (overrides: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id: `m-${Math.random()}`,
  source: 'test',
  type: OrderPlaced.type,
  time: '2026-11-22T10:00:00Z',
  data: { orderId: 'o-1', lines: [{ qty: 1 }] },
  ...overrides,
});

// On sluice/testing: each test awaits `settled()` instead of polling the dead-letter queue.
describe('bad input on the memory transport', () => {
  let harness: TestHarness;
  let handled: string[];
  const raw = (body: Buffer) => harness.sendRaw('orders', body);

  const start = async (options: { maxBodyBytes?: number; unknownTypes?: 'deadLetter' | 'ignore' } = {}) => {
    handled = [];
    harness = createTestHarness();
    harness.bus.endpoint('orders', options).handle(OrderPlaced, async (order) => {
      handled.push(order.orderId);
    });
    await harness.start();
  };

  afterEach(async () => {
    await harness.stop();
  });

  /** Sends the bad message, then a good one; proves the consumer kept running and returns the dead letter. */
  const deadLetterOf = async (body: Buffer) => {
    await raw(body);
    await raw(Buffer.from(JSON.stringify(event({ id: 'good-after' }))));
    await harness.settled();
    expect(handled).toEqual(['o-1']);
    const dlq = harness.bus.deadLetters('orders');
    expect(await dlq.count()).toBe(1);
    const [dead] = await dlq.peek();
    expect(dead && Buffer.compare(dead.body, body)).toBe(0);
    // Never retried: one outcome for the bad message, with no handler attempt.
    expect(harness.deadLettered()).toEqual([expect.objectContaining({ fault: dead?.fault })]);
    return dead;
  };

  it('dead-letters undecodable bytes at once, body kept byte for byte', async () => {
    await start();
    const dead = await deadLetterOf(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    expect(dead?.fault?.reason).toBe('undecodable');
    expect(dead?.fault?.attempts).toBe(0);
  });

  it('dead-letters an invalid envelope naming the field', async () => {
    await start();
    const dead = await deadLetterOf(Buffer.from(JSON.stringify(event({ source: '' }))));
    expect(dead?.fault?.reason).toBe('invalid-envelope');
    expect(dead?.fault?.description).toMatch(/^source: /);
  });

  it('dead-letters a local-time timestamp', async () => {
    await start();
    const dead = await deadLetterOf(Buffer.from(JSON.stringify(event({ time: '2026-11-22T10:00:00' }))));
    expect(dead?.fault?.reason).toBe('local-time-timestamp');
    expect(dead?.fault?.description).toMatch(/time: local-time timestamp/);
  });

  it('dead-letters a schema violation without retrying, naming path and rule', async () => {
    await start();
    const dead = await deadLetterOf(
      Buffer.from(
        JSON.stringify(event({ id: 'bad-schema', data: { orderId: 'o-2', lines: [{ qty: 1 }, { qty: -3 }] } })),
      ),
    );
    expect(dead?.fault?.reason).toBe('schema-violation');
    expect(dead?.fault?.description).toMatch(/data\.lines\[1\]\.qty: /);
    expect(dead?.fault?.messageId).toBe('bad-schema');
    expect(handled).not.toContain('o-2');
  });

  it('dead-letters an unknown message type by default', async () => {
    await start();
    const dead = await deadLetterOf(Buffer.from(JSON.stringify(event({ type: 'orders.unknown.v1' }))));
    expect(dead?.fault?.reason).toBe('unknown-message-type');
    expect(dead?.fault?.description).toMatch(/no handler for type "orders.unknown.v1"/);
  });

  it('completes an unknown message type with a warning when told to ignore it', async () => {
    await start({ unknownTypes: 'ignore' });
    await raw(Buffer.from(JSON.stringify(event({ type: 'orders.unknown.v1' }))));
    await raw(Buffer.from(JSON.stringify(event())));
    await harness.settled();
    expect(handled).toHaveLength(1);
    expect(harness.skipped().map((s) => s.reason)).toEqual(['unknown-type']);
    expect(await harness.bus.deadLetters('orders').count()).toBe(0);
  });

  it('dead-letters an oversized body without parsing it', async () => {
    await start({ maxBodyBytes: 512 });
    const dead = await deadLetterOf(
      Buffer.from(JSON.stringify(event({ data: { orderId: 'x'.repeat(1000), lines: [] } }))),
    );
    expect(dead?.fault?.reason).toBe('oversized');
    expect(dead?.fault?.description).toMatch(/limit \(maxBodyBytes\) is 512/);
  });
});
