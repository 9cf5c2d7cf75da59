import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AlreadySettledError, LockLostError, ManualClock, type Delivery } from '../../src/index.js';
import { MemoryBroker } from '../../src/memory-transport/memory-broker.js';
import { MemoryTransport } from '../../src/memory-transport/memory-transport.js';

const setup = async (lockTimeoutMs = 1000) => {
  const clock = new ManualClock();
  const broker = new MemoryBroker({ clock, lockTimeoutMs });
  const transport = new MemoryTransport(broker, { logger: pino({ level: 'silent' }), clock });
  await transport.connect();
  const got: Delivery[] = [];
  await transport.consume('q', (d) => got.push(d), { prefetch: 5 });
  await transport.send('q', {
    messageId: 'm1',
    body: Buffer.from('x'),
    headers: {},
    contentType: 't',
    key: undefined,
    messageType: 't',
  });
  await new Promise((r) => setImmediate(r));
  return { clock, transport, got };
};

describe('memory transport locks', () => {
  it('redelivers a delivery whose lock expired, with deliveryCount + 1', async () => {
    const { clock, got } = await setup(1000);
    expect(got).toHaveLength(1);
    clock.advance(1000);
    await new Promise((r) => setImmediate(r));
    expect(got).toHaveLength(2);
    expect(got[1]?.deliveryCount).toBe(2);
    // The first delivery still says what it was: the first.
    expect(got[0]?.deliveryCount).toBe(1);
  });

  it('refuses to settle after the lock was lost', async () => {
    const { clock, got } = await setup(1000);
    clock.advance(1000);
    await expect(got[0]?.complete()).rejects.toBeInstanceOf(LockLostError);
  });

  it('keeps the lock alive when renewed', async () => {
    const { clock, got } = await setup(1000);
    clock.advance(600);
    await got[0]?.renewLock();
    clock.advance(600);
    await new Promise((r) => setImmediate(r));
    expect(got).toHaveLength(1);
    await got[0]?.complete();
  });

  it('refuses a second settlement', async () => {
    const { got } = await setup();
    await got[0]?.complete();
    await expect(got[0]?.release()).rejects.toBeInstanceOf(AlreadySettledError);
  });

  it('refuses to send after close', async () => {
    const { transport } = await setup();
    await transport.close();
    await expect(
      transport.send('q', {
        messageId: 'm2',
        body: Buffer.from('x'),
        headers: {},
        contentType: 't',
        key: undefined,
        messageType: 't',
      }),
    ).rejects.toThrow(/closed/);
  });
});
