import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessage } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { type ServiceBusFixture, startServiceBusFixture } from './servicebus-fixture.js';

describe('Service Bus transport: unknownTypes skippedQueue', () => {
  let f: ServiceBusFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('creates <address>.skipped with the endpoint and moves an unknown type there', async () => {
    // Before: the skipped queue was never created, the forward failed, and the message came back
    // over and over (deliveryCount 8 in 20 s), never skipped, never dead-lettered.
    f = await startServiceBusFixture();
    const suffix = randomUUID().slice(0, 8);
    const Known = defineMessage(`tests.known-${suffix}.v1`, z.object({}));
    const Unknown = defineMessage(`tests.unknown-${suffix}.v1`, z.object({}));
    const endpoint = `skip-${suffix}`;
    const bus = f.bus('skip');
    bus.endpoint(endpoint, { unknownTypes: 'skippedQueue' }).handle(Known, async () => {});
    await bus.start();
    expect(f.emulator.entityExists(`${endpoint}.skipped`)).toBe(true);

    const id = await bus.send(endpoint, Unknown, {});
    const emulator = f.emulator;
    await waitFor(() => emulator.messages(`${endpoint}.skipped`).length === 1, {
      timeoutMs: 10_000,
      what: 'the message in the skipped queue',
    });
    const [moved] = emulator.messages(`${endpoint}.skipped`);
    expect(moved?.messageId).toBe(id);
    expect(moved?.applicationProperties['sluice-skip-reason']).toBe('unknown-type');
    // The emulator may drop the original before the SDK resolves the completion and the endpoint
    // counts it: wait for the count, not only for the queue.
    await waitFor(() => emulator.messages(endpoint).length === 0, { what: 'the original completed' });
    await waitFor(() => bus.health().endpoints[endpoint]?.counters.skipped === 1, { what: 'the skip counted' });
    expect(bus.health().endpoints[endpoint]?.counters).toMatchObject({ skipped: 1, settleFailures: 0 });
    expect(emulator.messages(`${endpoint}/$DeadLetterQueue`)).toEqual([]);
  });

  it('with entities: verify, start fails naming a missing skipped queue', async () => {
    const suffix = randomUUID().slice(0, 8);
    const endpoint = `skip-verify-${suffix}`;
    const Known = defineMessage(`tests.known-${suffix}.v1`, z.object({}));
    f = await startServiceBusFixture({
      queues: [endpoint],
      topics: [{ name: Known.type, subscriptions: [{ name: endpoint, forwardTo: endpoint }] }],
    });
    const bus = f.bus('skip', { entities: 'verify' });
    bus.endpoint(endpoint, { unknownTypes: 'skippedQueue' }).handle(Known, async () => {});
    await expect(bus.start()).rejects.toThrow(new RegExp(`queue "${endpoint}\\.skipped" does not exist`));
  });
});
