import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessage, InvalidOutgoingMessageError } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { type ServiceBusFixture, startServiceBusFixture } from './servicebus-fixture.js';

describe("Service Bus transport: the broker's own limits fail at publish", () => {
  let f: ServiceBusFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('refuses a message id over 128 characters, not retryable, naming the limit', async () => {
    // Before: the SDK's error became a retryable TransportError.
    f = await startServiceBusFixture();
    const suffix = randomUUID().slice(0, 8);
    const Note = defineMessage(`tests.note-${suffix}.v1`, z.object({ n: z.number() }));
    const bus = f.bus('limits');
    const received: number[] = [];
    bus.endpoint(`limits-${suffix}`).handle(Note, async ({ n }) => {
      received.push(n);
    });
    await bus.start();
    // 129 characters: within the envelope's 256, over Service Bus's 128.
    for (const attempt of [
      () => bus.publish(Note, { n: 1 }, { id: 'i'.repeat(129) }),
      () => bus.send(`limits-${suffix}`, Note, { n: 1 }, { id: 'i'.repeat(129) }),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOutgoingMessageError);
      expect((error as InvalidOutgoingMessageError).retryable).toBe(false);
      expect((error as Error).message).toMatch(/message id to 128 characters; .* has 129/);
    }
    await bus.send(`limits-${suffix}`, Note, { n: 2 }, { id: 'i'.repeat(128) });
    await waitFor(() => received.length === 1, { timeoutMs: 10_000, what: 'the 128-character id' });
    expect(received).toEqual([2]);
  });

  it('with sessions, refuses a key (the session id) over 128 characters', async () => {
    f = await startServiceBusFixture();
    const suffix = randomUUID().slice(0, 8);
    const Note = defineMessage(`tests.keyed-${suffix}.v1`, z.object({ n: z.number() }));
    const bus = f.bus('limits', { sessions: true });
    bus.endpoint(`keyed-${suffix}`).handle(Note, async () => {});
    await bus.start();
    const error = await bus.publish(Note, { n: 1 }, { key: 'k'.repeat(129) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOutgoingMessageError);
    expect((error as Error).message).toMatch(/session id \(the message key\) to 128 characters/);
  });
});
