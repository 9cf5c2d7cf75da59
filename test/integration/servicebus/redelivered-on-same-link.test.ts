import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type Delivery, LockLostError, systemClock, type Transport } from '../../../src/transport-core/index.js';
import { waitFor } from '../../support/wait-for.js';
import { type ServiceBusFixture, startServiceBusFixture } from './servicebus-fixture.js';

const LOCK_MS = 4_000;

describe('Service Bus transport: a message that comes again on the consumer holding it', () => {
  let f: ServiceBusFixture | undefined;
  let transport: Transport | undefined;
  afterEach(async () => {
    await transport?.close();
    transport = undefined;
    await f?.close();
    f = undefined;
  });

  it('the stale delivery settles as lock lost and the new delivery keeps its lock renewed', async () => {
    f = await startServiceBusFixture();
    const { definition } = f;
    const config = definition.configSchema.parse({
      kind: 'servicebus',
      connectionString: f.emulator.connectionString,
      entities: 'create',
      operationTimeoutMs: 10_000,
      createdQueues: { lockDurationMs: LOCK_MS, maxDeliveryCount: 10 },
    });
    transport = definition.create(config, { logger: pino({ level: 'silent' }), clock: systemClock });
    await transport.connect();
    const address = `again-${randomUUID().slice(0, 8)}`;
    await transport.declare({ address, endpoint: address, messageTypes: [`tests.${address}.v1`] });
    const deliveries: Delivery[] = [];
    await transport.consume(address, (d) => deliveries.push(d), { prefetch: 10 });
    await transport.send(address, {
      messageId: randomUUID(),
      body: Buffer.from('again'),
      headers: {},
      contentType: 'text/plain',
      key: undefined,
      messageType: `tests.${address}.v1`,
    });
    await waitFor(() => deliveries.length === 1, { what: 'the first delivery' });
    // The lock ends as if the client had been too busy to renew it: the broker hands the message out
    // again, to the same consumer (it has credit), while the first delivery is still held.
    expect(f.emulator.expireLocks(address)).toBe(1);
    await waitFor(() => deliveries.length === 2, { what: 'the message again' });
    const [stale, fresh] = deliveries as [Delivery, Delivery];
    expect(fresh.deliveryCount).toBe(2);
    await expect(stale.complete()).rejects.toBeInstanceOf(LockLostError);
    // The SDK keys lock renewal by message id: that settlement of the stale delivery stopped the
    // renewal of the new one, whose lock then expired too (the message a third time).
    const held = () => f?.emulator.messages(address)[0];
    const lockedUntil = held()?.lockedUntilMs ?? 0;
    await waitFor(() => (held()?.deliveryCount ?? 0) > 1 || (held()?.lockedUntilMs ?? 0) > lockedUntil, {
      timeoutMs: LOCK_MS * 3,
      what: 'a renewal of the new lock, or its expiry',
    });
    expect(held()).toMatchObject({ deliveryCount: 1, locked: true });
    await fresh.complete();
    expect(f.emulator.messages(address)).toHaveLength(0);
  });
});
