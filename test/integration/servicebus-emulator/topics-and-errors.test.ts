import { ServiceBusClient, isServiceBusError } from '@azure/service-bus';
import { afterEach, describe, expect, it } from 'vitest';
import { startServiceBusEmulator } from '../../infra/servicebus/start-service-bus-emulator.js';
import { type EmulatorFixture, startFixture } from './emulator-fixture.js';

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('Service Bus emulator: topics and errors', () => {
  let f: EmulatorFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('a message sent to a topic is copied to each subscription, each with its own DLQ', async () => {
    f = await startFixture({ topics: [{ name: 'events', subscriptions: ['a', 'b'] }] });
    await f.client.createSender('events').sendMessages({ body: 'fan', messageId: 'e1' });
    const ra = f.client.createReceiver('events', 'a');
    const rb = f.client.createReceiver('events', 'b');
    const [ma] = await ra.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    const [mb] = await rb.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(ma?.body).toBe('fan');
    expect(mb?.body).toBe('fan');
    await ra.completeMessage(ma!);
    await rb.deadLetterMessage(mb!, { deadLetterReason: 'nope', deadLetterErrorDescription: 'filtered' });
    expect(f.emulator.messages('events/Subscriptions/a')).toHaveLength(0);
    expect(f.emulator.messages('events/Subscriptions/a/$DeadLetterQueue')).toHaveLength(0);
    const dlq = f.client.createReceiver('events', 'b', { subQueueType: 'deadLetter' });
    const [d] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(d?.messageId).toBe('e1');
    expect(d?.deadLetterReason).toBe('nope');
  });

  it('scheduling on a topic schedules a copy per subscription; cancel removes all copies', async () => {
    f = await startFixture({ topics: [{ name: 'events', subscriptions: ['a', 'b'] }] });
    const sender = f.client.createSender('events');
    const [seq] = await sender.scheduleMessages({ body: 'later' }, new Date(Date.now() + 60_000));
    expect(f.emulator.messages('events/Subscriptions/a').map((m) => m.state)).toEqual(['scheduled']);
    expect(f.emulator.messages('events/Subscriptions/b').map((m) => m.state)).toEqual(['scheduled']);
    await sender.cancelScheduledMessages(seq!);
    expect(f.emulator.messages('events/Subscriptions/a')).toHaveLength(0);
    expect(f.emulator.messages('events/Subscriptions/b')).toHaveLength(0);
  });

  it('an unknown entity is reported as MessagingEntityNotFound', async () => {
    f = await startFixture({ queues: ['known'] });
    const sendErr = await errorOf(f.client.createSender('unknown').sendMessages({ body: 1 }));
    expect(isServiceBusError(sendErr) && sendErr.code).toBe('MessagingEntityNotFound');
    const recvErr = await errorOf(f.client.createReceiver('unknown').receiveMessages(1, { maxWaitTimeInMs: 1000 }));
    expect(isServiceBusError(recvErr) && recvErr.code).toBe('MessagingEntityNotFound');
    const subErr = await errorOf(
      f.client.createReceiver('known', 'nosub').receiveMessages(1, { maxWaitTimeInMs: 1000 }),
    );
    expect(isServiceBusError(subErr) && subErr.code).toBe('MessagingEntityNotFound');
  });

  it('a bad SAS key is reported as UnauthorizedAccess', async () => {
    const emulator = await startServiceBusEmulator({ port: 0, queues: ['q'], sasKey: 'right-key' });
    const client = new ServiceBusClient(emulator.connectionString.replace('right-key', 'wrong-key'), {
      retryOptions: { maxRetries: 0, timeoutInMs: 5000 },
    });
    try {
      const err = await errorOf(client.createSender('q').sendMessages({ body: 1 }));
      expect(isServiceBusError(err) && err.code).toBe('UnauthorizedAccess');
      expect(emulator.messages('q')).toHaveLength(0);
    } finally {
      await client.close();
      await emulator.close();
    }
  });
});
