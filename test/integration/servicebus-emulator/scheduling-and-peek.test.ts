import { afterEach, describe, expect, it } from 'vitest';
import { type EmulatorFixture, startFixture, waitFor } from './emulator-fixture.js';

describe('Service Bus emulator: scheduling, peek, defer', () => {
  let f: EmulatorFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('scheduleMessages delivers at the scheduled time; cancelScheduledMessages removes', async () => {
    f = await startFixture({ queues: ['q'] });
    const sender = f.client.createSender('q');
    const at = new Date(Date.now() + 700);
    const [keep] = await sender.scheduleMessages({ body: 'later' }, at);
    const [drop] = await sender.scheduleMessages({ body: 'cancelled' }, at);
    expect(keep!.toNumber()).toBe(1);
    expect(drop!.toNumber()).toBe(2);
    const scheduled = f.emulator.messages('q');
    expect(scheduled.map((m) => m.state)).toEqual(['scheduled', 'scheduled']);
    await sender.cancelScheduledMessages(drop!);
    expect(f.emulator.messages('q')).toHaveLength(1);

    const peeked = await f.client.createReceiver('q').peekMessages(5);
    expect(peeked.map((m) => [m.body, m.state])).toEqual([['later', 'scheduled']]);

    const r = f.client.createReceiver('q');
    const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(m?.body).toBe('later');
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime() - 5);
    expect(m?.sequenceNumber?.toNumber()).toBe(1);
    await r.completeMessage(m!);
  });

  it('a message sent with scheduledEnqueueTimeUtc is held until then', async () => {
    f = await startFixture({ queues: ['q'] });
    const at = new Date(Date.now() + 500);
    await f.client.createSender('q').sendMessages({ body: 's', scheduledEnqueueTimeUtc: at });
    expect(f.emulator.messages('q')[0]?.state).toBe('scheduled');
    await waitFor(() => f!.emulator.activeMessageCount('q') === 1, 5000, 'activation');
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime() - 5);
  });

  it('peekMessages returns messages without locking them, in sequence order', async () => {
    f = await startFixture({ queues: ['q'] });
    await f.client.createSender('q').sendMessages([{ body: 1 }, { body: 2 }, { body: 3 }]);
    const r = f.client.createReceiver('q');
    const first = await r.peekMessages(2);
    expect(first.map((m) => m.body)).toEqual([1, 2]);
    const next = await r.peekMessages(2);
    expect(next.map((m) => m.body)).toEqual([3]);
    expect(await r.peekMessages(2)).toEqual([]);
    expect(f.emulator.messages('q').every((m) => !m.locked)).toBe(true);
    const got = await r.receiveMessages(3, { maxWaitTimeInMs: 5000 });
    expect(got).toHaveLength(3);
  });

  it('defer + receiveDeferredMessages', async () => {
    f = await startFixture({ queues: ['q'] });
    await f.client.createSender('q').sendMessages([{ body: 'd' }, { body: 'n' }]);
    const r = f.client.createReceiver('q');
    const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    const seq = m!.sequenceNumber!;
    await r.deferMessage(m!, { deferredBy: 'test' });
    expect(f.emulator.messages('q')[0]?.state).toBe('deferred');
    const [next] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(next?.body).toBe('n');
    await r.completeMessage(next!);

    const [deferred] = await r.receiveDeferredMessages(seq);
    expect(deferred?.body).toBe('d');
    expect(deferred?.state).toBe('deferred');
    expect(deferred?.deliveryCount).toBe(1);
    expect(deferred?.applicationProperties?.deferredBy).toBe('test');
    await r.completeMessage(deferred!);
    expect(f.emulator.messages('q')).toHaveLength(0);
  });
});
