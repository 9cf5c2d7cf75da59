import { isServiceBusError } from '@azure/service-bus';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmulatorFixture, startFixture, waitFor } from './emulator-fixture.js';

describe('Service Bus emulator: queue peek-lock semantics', () => {
  let f: EmulatorFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('round-trips a single message and a batch with broker properties', async () => {
    f = await startFixture({ queues: ['orders'] });
    const sender = f.client.createSender('orders');
    await sender.sendMessages({ body: { n: 1 }, messageId: 'm1', subject: 's', applicationProperties: { k: 'v' } });
    const batch = await sender.createMessageBatch();
    expect(batch.tryAddMessage({ body: 'a', messageId: 'm2' })).toBe(true);
    expect(batch.tryAddMessage({ body: 'b', messageId: 'm3' })).toBe(true);
    await sender.sendMessages(batch);

    const receiver = f.client.createReceiver('orders');
    const got = await receiver.receiveMessages(3, { maxWaitTimeInMs: 5000 });
    expect(got.map((m) => m.body)).toEqual([{ n: 1 }, 'a', 'b']);
    expect(got.map((m) => m.messageId)).toEqual(['m1', 'm2', 'm3']);
    expect(got.map((m) => m.sequenceNumber?.toNumber())).toEqual([1, 2, 3]);
    expect(got[0]?.subject).toBe('s');
    expect(got[0]?.applicationProperties).toEqual({ k: 'v' });
    for (const m of got) {
      expect(m.deliveryCount).toBe(0);
      expect(m.lockToken).toMatch(/^[0-9a-f-]{36}$/);
      expect(m.lockedUntilUtc).toBeInstanceOf(Date);
      expect(m.enqueuedTimeUtc).toBeInstanceOf(Date);
      await receiver.completeMessage(m);
    }
    expect(f.emulator.messages('orders')).toHaveLength(0);
  });

  it('complete removes; a locked message is invisible to another receiver', async () => {
    f = await startFixture({ queues: ['q'] });
    await f.client.createSender('q').sendMessages([{ body: 1 }, { body: 2 }]);
    const r1 = f.client.createReceiver('q');
    const r2 = f.client.createReceiver('q');
    const [first] = await r1.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    const [second] = await r2.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(first?.body).toBe(1);
    expect(second?.body).toBe(2);
    await r1.completeMessage(first!);
    await r2.completeMessage(second!);
    expect(f.emulator.messages('q')).toHaveLength(0);
  });

  it('abandon redelivers with deliveryCount + 1 and merged properties', async () => {
    f = await startFixture({ queues: ['q'] });
    await f.client.createSender('q').sendMessages({ body: 'x', applicationProperties: { a: 1 } });
    const r = f.client.createReceiver('q');
    const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(m?.deliveryCount).toBe(0);
    await r.abandonMessage(m!, { reason: 'retry' });
    const [again] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(again?.body).toBe('x');
    expect(again?.deliveryCount).toBe(1);
    expect(again?.applicationProperties).toEqual({ a: 1, reason: 'retry' });
    await r.completeMessage(again!);
  });

  it('dead-letter moves the message to the $DeadLetterQueue subqueue with reason and description', async () => {
    f = await startFixture({ queues: ['q'] });
    await f.client.createSender('q').sendMessages({ body: 'poison', messageId: 'p1' });
    const r = f.client.createReceiver('q');
    const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    await r.deadLetterMessage(m!, {
      deadLetterReason: 'Invalid',
      deadLetterErrorDescription: 'cannot parse',
      extra: 'x',
    } as never);
    expect(f.emulator.messages('q')).toHaveLength(0);
    const dlq = f.client.createReceiver('q', { subQueueType: 'deadLetter' });
    const [d] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(d?.body).toBe('poison');
    expect(d?.messageId).toBe('p1');
    expect(d?.deadLetterReason).toBe('Invalid');
    expect(d?.deadLetterErrorDescription).toBe('cannot parse');
    expect(d?.applicationProperties?.extra).toBe('x');
    await dlq.completeMessage(d!);
    expect(f.emulator.messages('q/$DeadLetterQueue')).toHaveLength(0);
  });

  it('lock expiry makes the message available again and a late complete fails with MessageLockLost', async () => {
    f = await startFixture({ queues: [{ name: 'q', lockDurationMs: 600 }] });
    await f.client.createSender('q').sendMessages({ body: 'slow' });
    const r = f.client.createReceiver('q', { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(m?.deliveryCount).toBe(0);
    await waitFor(() => f!.emulator.messages('q')[0]?.locked === false, 5000, 'lock expiry');
    const other = f.client.createReceiver('q', { maxAutoLockRenewalDurationInMs: 0 });
    const [again] = await other.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(again?.body).toBe('slow');
    expect(again?.deliveryCount).toBe(1);
    const err = await r.completeMessage(m!).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isServiceBusError(err) && err.code).toBe('MessageLockLost');
    await other.completeMessage(again!);
    expect(f.emulator.messages('q')).toHaveLength(0);
  });

  it('answers a lost lock and a completion settled in one disposition each with its own outcome', async () => {
    // The first delivery's lock expires; the message comes again on the same link (the next
    // delivery id) and both are completed in one tick, so the SDK sends one disposition over the
    // two. The server must answer the lost lock as lost and the completion as done: a completion
    // reported lost is a message the client waits for in vain (it was removed).
    f = await startFixture({ queues: [{ name: 'q', lockDurationMs: 3000 }] });
    await f.client.createSender('q').sendMessages({ body: 'once' });
    const r = f.client.createReceiver('q', { maxAutoLockRenewalDurationInMs: 0 });
    const [expired] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    await waitFor(() => f!.emulator.messages('q')[0]?.locked === false, 10_000, 'lock expiry');
    const [again] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(again?.deliveryCount).toBe(1);
    const outcomes = await Promise.all(
      [expired, again].map((m) =>
        r.completeMessage(m!).then(
          () => 'completed',
          (e: unknown) => (isServiceBusError(e) ? e.code : e),
        ),
      ),
    );
    expect(outcomes).toEqual(['MessageLockLost', 'completed']);
    expect(f.emulator.messages('q')).toHaveLength(0);
  });

  it('renewMessageLock extends lockedUntilUtc', async () => {
    f = await startFixture({ queues: [{ name: 'q', lockDurationMs: 2000 }] });
    await f.client.createSender('q').sendMessages({ body: 1 });
    const r = f.client.createReceiver('q', { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    const before = m!.lockedUntilUtc!.getTime();
    await waitFor(() => Date.now() >= before - 1900 + 50, 2000, 'clock to advance');
    const renewed = await r.renewMessageLock(m!);
    expect(renewed.getTime()).toBeGreaterThan(before);
    expect(m!.lockedUntilUtc!.getTime()).toBe(renewed.getTime());
    await r.completeMessage(m!);
  });

  it('dead-letters with MaxDeliveryCountExceeded after maxDeliveryCount abandons', async () => {
    f = await startFixture({ queues: [{ name: 'q', maxDeliveryCount: 3 }] });
    await f.client.createSender('q').sendMessages({ body: 'bad' });
    const r = f.client.createReceiver('q');
    for (let i = 0; i < 3; i++) {
      const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
      expect(m?.deliveryCount).toBe(i);
      await r.abandonMessage(m!);
    }
    expect(f.emulator.messages('q')).toHaveLength(0);
    const dlq = f.client.createReceiver('q', { subQueueType: 'deadLetter' });
    const [d] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(d?.body).toBe('bad');
    expect(d?.deadLetterReason).toBe('MaxDeliveryCountExceeded');
  });

  it('receiveAndDelete removes on delivery', async () => {
    f = await startFixture({ queues: ['q'] });
    await f.client.createSender('q').sendMessages([{ body: 1 }, { body: 2 }]);
    const r = f.client.createReceiver('q', { receiveMode: 'receiveAndDelete' });
    const got = await r.receiveMessages(2, { maxWaitTimeInMs: 5000 });
    expect(got.map((m) => m.body)).toEqual([1, 2]);
    expect(f.emulator.messages('q')).toHaveLength(0);
  });

  it('subscribe() with maxConcurrentCalls and autoCompleteMessages false', async () => {
    f = await startFixture({ queues: ['q'] });
    const bodies = Array.from({ length: 10 }, (_, i) => i);
    await f.client.createSender('q').sendMessages(bodies.map((body) => ({ body })));
    const r = f.client.createReceiver('q');
    const seen: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const sub = r.subscribe(
      {
        async processMessage(m) {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((res) => setImmediate(res));
          seen.push(m.body as number);
          await r.completeMessage(m);
          inFlight--;
        },
        async processError() {},
      },
      { maxConcurrentCalls: 3, autoCompleteMessages: false },
    );
    await waitFor(() => seen.length === 10, 10_000, 'all messages processed');
    await sub.close();
    expect([...seen].sort((a, b) => a - b)).toEqual(bodies);
    expect(maxInFlight).toBeLessThanOrEqual(3);
    await waitFor(() => f!.emulator.messages('q').length === 0, 5000, 'queue to drain');
  });
});
