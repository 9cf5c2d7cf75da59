import { ServiceBusClient, isServiceBusError } from '@azure/service-bus';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmulatorFixture, startFixture, waitFor } from './emulator-fixture.js';

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('Service Bus emulator: sessions', () => {
  let f: EmulatorFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it("acceptSession delivers the session's messages in order; a second acceptSession on it fails", async () => {
    f = await startFixture({ queues: [{ name: 'sq', requiresSession: true }] });
    const sender = f.client.createSender('sq');
    await sender.sendMessages([
      { body: 'a1', sessionId: 'A' },
      { body: 'b1', sessionId: 'B' },
      { body: 'a2', sessionId: 'A' },
      { body: 'a3', sessionId: 'A' },
    ]);
    const a = await f.client.acceptSession('sq', 'A');
    expect(a.sessionId).toBe('A');
    expect(a.sessionLockedUntilUtc.getTime()).toBeGreaterThan(Date.now());
    const got = await a.receiveMessages(3, { maxWaitTimeInMs: 5000 });
    expect(got.map((m) => m.body)).toEqual(['a1', 'a2', 'a3']);
    expect(got.every((m) => m.sessionId === 'A')).toBe(true);

    const err = await errorOf(f.client.acceptSession('sq', 'A'));
    expect(isServiceBusError(err) && err.code).toBe('SessionCannotBeLocked');

    for (const m of got) await a.completeMessage(m);
    await a.close();
    expect(f.emulator.messages('sq').map((m) => m.sessionId)).toEqual(['B']);
  });

  it('acceptNextSession picks an unlocked session with messages; sessions are exclusive', async () => {
    f = await startFixture({ queues: [{ name: 'sq', requiresSession: true }] });
    await f.client.createSender('sq').sendMessages([
      { body: 'x1', sessionId: 'X' },
      { body: 'y1', sessionId: 'Y' },
      { body: 'x2', sessionId: 'X' },
    ]);
    const first = await f.client.acceptNextSession('sq');
    expect(first.sessionId).toBe('X');
    const second = await f.client.acceptNextSession('sq');
    expect(second.sessionId).toBe('Y');
    const xs = await first.receiveMessages(5, { maxWaitTimeInMs: 1500 });
    expect(xs.map((m) => m.body)).toEqual(['x1', 'x2']);
    const ys = await second.receiveMessages(5, { maxWaitTimeInMs: 1500 });
    expect(ys.map((m) => m.body)).toEqual(['y1']);
    for (const m of xs) await first.completeMessage(m);
    for (const m of ys) await second.completeMessage(m);
    expect(f.emulator.messages('sq')).toHaveLength(0);
  });

  it('acceptNextSession waits for a session to arrive', async () => {
    f = await startFixture({ queues: [{ name: 'sq', requiresSession: true }] });
    const pending = f.client.acceptNextSession('sq');
    await new Promise((r) => setImmediate(r));
    await f.client.createSender('sq').sendMessages({ body: 'late', sessionId: 'L' });
    const s = await pending;
    expect(s.sessionId).toBe('L');
    const [m] = await s.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(m?.body).toBe('late');
    await s.completeMessage(m!);
  });

  it('acceptNextSession with no session available fails with ServiceTimeout after the client timeout', async () => {
    f = await startFixture({ queues: [{ name: 'sq', requiresSession: true }] });
    const client = new ServiceBusClient(f.emulator.connectionString, {
      retryOptions: { maxRetries: 0, timeoutInMs: 1500 },
    });
    try {
      const started = Date.now();
      const err = await errorOf(client.acceptNextSession('sq'));
      expect(isServiceBusError(err) && err.code).toBe('ServiceTimeout');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    } finally {
      await client.close();
    }
  });

  it('session state, renewSessionLock and abandon within a session', async () => {
    f = await startFixture({ queues: [{ name: 'sq', requiresSession: true, lockDurationMs: 5000 }] });
    await f.client.createSender('sq').sendMessages([
      { body: 1, sessionId: 'S' },
      { body: 2, sessionId: 'S' },
    ]);
    const s = await f.client.acceptSession('sq', 'S', { maxAutoLockRenewalDurationInMs: 0 });
    expect(await s.getSessionState()).toBeNull();
    await s.setSessionState({ step: 1 });
    expect(await s.getSessionState()).toEqual({ step: 1 });
    const before = s.sessionLockedUntilUtc.getTime();
    await waitFor(() => Date.now() > before - 5000 + 20, 1000, 'clock to advance');
    const renewed = await s.renewSessionLock();
    expect(renewed.getTime()).toBeGreaterThan(before);

    const [m1] = await s.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(m1?.body).toBe(1);
    await s.abandonMessage(m1!);
    const [again] = await s.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(again?.body).toBe(1);
    expect(again?.deliveryCount).toBe(1);
    await s.completeMessage(again!);
    const [m2] = await s.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(m2?.body).toBe(2);
    await s.completeMessage(m2!);
  });

  it('session lock expiry closes the session receiver with SessionLockLost and releases the session', async () => {
    f = await startFixture({ queues: [{ name: 'sq', requiresSession: true, lockDurationMs: 500 }] });
    await f.client.createSender('sq').sendMessages({ body: 'e', sessionId: 'E' });
    const s = await f.client.acceptSession('sq', 'E', { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await s.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(m?.body).toBe('e');
    await waitFor(() => f!.emulator.messages('sq')[0]?.locked === false, 5000, 'session lock expiry');
    // Wait until the SDK has processed the server's detach. A settle sent before that races the
    // detach, and the SDK then waits for its own 60 s settlement timeout (as with the real service).
    await waitFor(() => s.isClosed, 5000, 'the SDK to see the session receiver closed');
    const err = await errorOf(s.completeMessage(m!));
    expect(isServiceBusError(err) && err.code).toBe('SessionLockLost');
    const s2 = await f.client.acceptSession('sq', 'E');
    const [again] = await s2.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(again?.deliveryCount).toBe(1);
    await s2.completeMessage(again!);
  });

  it('a non-session receiver on a session queue and a session-less message are refused', async () => {
    f = await startFixture({ queues: [{ name: 'sq', requiresSession: true }] });
    const sendErr = await errorOf(f.client.createSender('sq').sendMessages({ body: 'no session' }));
    expect(isServiceBusError(sendErr)).toBe(true);
    expect(f.emulator.messages('sq')).toHaveLength(0);
    const recvErr = await errorOf(f.client.createReceiver('sq').receiveMessages(1, { maxWaitTimeInMs: 1000 }));
    // amqp:not-allowed has no dedicated ServiceBusError code in the SDK
    expect(isServiceBusError(recvErr) && recvErr.code).toBe('GeneralError');
    expect(String((recvErr as Error).message)).toContain('requires sessions');
  });

  it('topic subscriptions can require sessions', async () => {
    f = await startFixture({ topics: [{ name: 't', subscriptions: [{ name: 's', requiresSession: true }] }] });
    await f.client.createSender('t').sendMessages([
      { body: 1, sessionId: 'k' },
      { body: 2, sessionId: 'k' },
    ]);
    const s = await f.client.acceptNextSession('t', 's');
    expect(s.sessionId).toBe('k');
    const got = await s.receiveMessages(2, { maxWaitTimeInMs: 5000 });
    expect(got.map((m) => m.body)).toEqual([1, 2]);
  });
});
