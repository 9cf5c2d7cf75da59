import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, createMemoryBroker, defineMessage, memoryTransport } from '../../src/index.js';
import { waitFor } from '../support/wait-for.js';

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

describe('bad input on the memory transport', () => {
  let bus: Bus;
  let handled: string[];
  const raw = async (body: Buffer) => {
    await bus.transport.send('orders', {
      messageId: 'raw',
      body,
      headers: {},
      contentType: 'application/json',
      key: undefined,
      messageType: 'x',
    });
  };

  const start = async (options: { maxBodyBytes?: number; unknownTypes?: 'deadLetter' | 'ignore' } = {}) => {
    handled = [];
    bus = createBus(
      { transport: { kind: 'memory' }, shutdown: { signals: [], timeoutMs: 1000 } },
      { transports: [memoryTransport({ broker: createMemoryBroker() })], logger: pino({ level: 'silent' }) },
    );
    bus.endpoint('orders', options).handle(OrderPlaced, async (order) => {
      handled.push(order.orderId);
    });
    await bus.start();
  };

  afterEach(async () => {
    await bus.stop();
  });

  /** Sends the bad message, then a good one; proves the consumer kept running and returns the dead letter. */
  const deadLetterOf = async (body: Buffer) => {
    await raw(body);
    await raw(Buffer.from(JSON.stringify(event({ id: 'good-after' }))));
    await waitFor(() => handled.includes('o-1'), { what: 'the good message after the bad one' });
    const dlq = bus.deadLetters('orders');
    await waitFor(async () => (await dlq.count()) === 1, { what: 'dead letter' });
    const [dead] = await dlq.peek();
    expect(dead && Buffer.compare(dead.body, body)).toBe(0);
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
    await waitFor(() => handled.length === 1);
    await waitFor(() => bus.health().endpoints.orders?.counters.skipped === 1);
    expect(await bus.deadLetters('orders').count()).toBe(0);
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
