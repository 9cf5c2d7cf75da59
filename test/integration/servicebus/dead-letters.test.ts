import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessage, PermanentError } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { type ServiceBusFixture, startServiceBusFixture } from './servicebus-fixture.js';

const Charge = defineMessage('tests.charge-card.v1', z.object({ amount: z.number() }));

describe('Service Bus transport: dead letters', () => {
  let f: ServiceBusFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('the broker dead-letters a message released past maxDeliveryCount as MaxDeliveryCountExceeded', async () => {
    f = await startServiceBusFixture();
    const bus = f.bus('dlq', { createdQueues: { lockDurationMs: 5_000, maxDeliveryCount: 3 } });
    const endpoint = `mdc-${randomUUID().slice(0, 8)}`;
    let runs = 0;
    // No floor under retryLater: a zero delay is a plain redelivery, which the broker counts.
    bus.endpoint(endpoint, { retryLater: { minDelayMs: 0 } }).handle(Charge, async (_m, ctx) => {
      runs++;
      ctx.retryLater(0, 'always busy');
    });
    await bus.start();
    await bus.send(endpoint, Charge, { amount: 1 });
    const dlq = bus.deadLetters(endpoint);
    await waitFor(async () => (await dlq.count()) === 1, { timeoutMs: 10_000, what: 'the dead letter' });
    const [dead] = await dlq.peek();
    expect(dead?.headers.DeadLetterReason).toBe('MaxDeliveryCountExceeded');
    expect(dead?.fault).toBeUndefined();
    expect(runs).toBe(3);
  });

  it('dead-letters with the fault in the native subqueue, and redrive brings it back to the endpoint', async () => {
    f = await startServiceBusFixture();
    const bus = f.bus('dlq');
    const endpoint = `billing-${randomUUID().slice(0, 8)}`;
    let broken = true;
    const charged: number[] = [];
    bus.endpoint(endpoint).handle(Charge, async (m, ctx) => {
      if (broken) throw new PermanentError('card processor rejects the merchant id');
      charged.push(m.amount);
      expect(ctx.deliveryCount).toBe(1);
    });
    await bus.start();
    const id = await bus.send(endpoint, Charge, { amount: 42 });
    const dlq = bus.deadLetters(endpoint);
    await waitFor(async () => (await dlq.count()) === 1, { timeoutMs: 10_000, what: 'the dead letter' });
    const [dead] = await dlq.peek();
    expect(dead?.fault?.reason).toBe('permanent-failure');
    expect(dead?.fault?.errorMessage).toBe('card processor rejects the merchant id');
    expect(dead?.headers.DeadLetterReason).toBe('permanent-failure');
    expect(dead?.headers.DeadLetterErrorDescription).toBe(dead?.fault?.description);
    expect(JSON.parse(dead?.body.toString() ?? '{}').id).toBe(id);

    broken = false;
    const result = await dlq.redrive({ ids: [dead?.deadLetterId ?? ''] }, 'merchant id fixed');
    expect(result).toEqual({ moved: 1, ids: [expect.any(String)] });
    await waitFor(() => charged.length === 1, { timeoutMs: 10_000, what: 'the redriven charge' });
    expect(charged).toEqual([42]);
    expect(await dlq.count()).toBe(0);
  });
});
