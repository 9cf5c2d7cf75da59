import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessage } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { type ServiceBusFixture, startServiceBusFixture } from './servicebus-fixture.js';

describe('Service Bus transport: publish', () => {
  let f: ServiceBusFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('a publish goes to the topic of its type and reaches every endpoint subscribed to it, once', async () => {
    f = await startServiceBusFixture();
    const suffix = randomUUID().slice(0, 8);
    const OrderPlaced = defineMessage(`tests.order-placed-${suffix}.v1`, z.object({ orderId: z.string() }));
    const billingBus = f.bus('billing');
    const auditBus = f.bus('audit');
    const billed: string[] = [];
    const audited: string[] = [];
    billingBus.endpoint(`billing-${suffix}`).handle(OrderPlaced, async (m) => {
      billed.push(m.orderId);
    });
    auditBus.endpoint(`audit-${suffix}`).handle(OrderPlaced, async (m) => {
      audited.push(m.orderId);
    });
    await billingBus.start();
    await auditBus.start();
    // Topic = message type; one subscription per endpoint, auto-forwarding into the endpoint's queue.
    expect(f.emulator.entityExists(`tests.order-placed-${suffix}.v1/Subscriptions/billing-${suffix}`)).toBe(true);
    expect(f.emulator.entityExists(`tests.order-placed-${suffix}.v1/Subscriptions/audit-${suffix}`)).toBe(true);

    await billingBus.publish(OrderPlaced, { orderId: 'o-1' });
    await waitFor(() => billed.length === 1 && audited.length === 1, { timeoutMs: 10_000, what: 'both endpoints' });
    // The handlers ran; their completions reach the emulator a moment later. Once both queues are
    // empty nothing else is pending anywhere: each endpoint got exactly one copy.
    const emulator = f.emulator;
    await waitFor(
      () => emulator.messages(`billing-${suffix}`).length === 0 && emulator.messages(`audit-${suffix}`).length === 0,
      { timeoutMs: 10_000, what: 'both completions to reach the broker' },
    );
    expect(billed).toEqual(['o-1']);
    expect(audited).toEqual(['o-1']);
  });

  it('with entities: verify, start fails naming the missing entity', async () => {
    f = await startServiceBusFixture({ queues: ['present'] });
    const Ping = defineMessage('tests.ping.v1', z.object({}));
    const bus = f.bus('verify', { entities: 'verify' });
    bus.endpoint('present').handle(Ping, async () => {});
    await expect(bus.start()).rejects.toThrow(/topic "tests\.ping\.v1".*does not exist/);
  });
});
