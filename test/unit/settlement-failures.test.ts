import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  createBus,
  createMemoryBroker,
  defineMessage,
  type MemoryBroker,
  MemoryInbox,
  memoryTransport,
  PermanentError,
  TransportError,
} from '../../src/index.js';
import { waitFor } from '../support/wait-for.js';

const Charge = defineMessage('billing.charge.v1', z.object({ amount: z.number() }));
const Refund = defineMessage('billing.refund.v1', z.object({ amount: z.number() }));

describe('when settling or the pipeline itself fails', () => {
  let bus: Bus | undefined;
  afterEach(async () => {
    await bus?.stop();
  });
  const make = (broker: MemoryBroker, logger = pino({ level: 'silent' })) =>
    createBus({ shutdown: { signals: [] } }, { transports: [memoryTransport({ broker })], logger });

  it('retries a failed forward to the skipped queue instead of leaving the delivery unsettled', async () => {
    const broker = createMemoryBroker();
    bus = make(broker);
    bus.endpoint('billing', { unknownTypes: 'skippedQueue' }).handle(Charge, () => {});
    await bus.start();
    const send = bus.transport.send.bind(bus.transport);
    let failures = 1;
    bus.transport.send = async (address, message) => {
      if (address === 'billing.skipped' && failures-- > 0) throw new Error('broker hiccup');
      return send(address, message);
    };
    const id = await bus.send('billing', Refund, { amount: 1 });
    await waitFor(() => broker.queue('billing.skipped').readyCount === 1);
    await waitFor(() => broker.queue('billing').lockedCount === 0 && broker.queue('billing').readyCount === 0);
    expect(bus.health().endpoints.billing?.counters.settleFailures).toBe(1);
    expect(bus.health().endpoints.billing?.counters.skipped).toBe(1);
    // The copy keeps the message id, so deduplication downstream still recognises it.
    const copy = await new Promise<string>((resolve) => {
      void bus?.transport.consume('billing.skipped', (d) => resolve(JSON.parse(d.body.toString()).id), { prefetch: 1 });
    });
    expect(copy).toBe(id);
  });

  it('dead-letters an unknown type whose forward to the skipped queue fails on every try, instead of cycling it', async () => {
    // Before: after the settle retries the message went back to the broker, came again, failed
    // again: forever, never skipped and never dead-lettered.
    const broker = createMemoryBroker();
    bus = make(broker);
    bus.endpoint('billing', { unknownTypes: 'skippedQueue' }).handle(Charge, () => {});
    await bus.start();
    const send = bus.transport.send.bind(bus.transport);
    let tries = 0;
    bus.transport.send = async (address, message) => {
      if (address !== 'billing.skipped') return send(address, message);
      tries++;
      throw new Error('broker refuses the skipped queue');
    };
    await bus.send('billing', Refund, { amount: 1 });
    const dlq = bus.deadLetters('billing');
    await waitFor(async () => (await dlq.count()) === 1, { timeoutMs: 10_000, what: 'the dead letter' });
    const [dead] = await dlq.peek(1);
    expect(dead?.fault?.reason).toBe('unknown-message-type');
    expect(dead?.fault?.description).toMatch(/moving it to "billing\.skipped" failed \(4 tries\): .*refuses/);
    expect(tries).toBe(4);
    expect(bus.health().endpoints.billing?.counters).toMatchObject({ received: 1, deadLettered: 1, released: 0 });
  });

  it('dead-letters at once an unknown type whose forward is refused as not retryable', async () => {
    const broker = createMemoryBroker();
    bus = make(broker);
    bus.endpoint('billing', { unknownTypes: 'skippedQueue' }).handle(Charge, () => {});
    await bus.start();
    const send = bus.transport.send.bind(bus.transport);
    let tries = 0;
    bus.transport.send = async (address, message) => {
      if (address !== 'billing.skipped') return send(address, message);
      tries++;
      throw new TransportError('no such queue', { retryable: false });
    };
    await bus.send('billing', Refund, { amount: 1 });
    const dlq = bus.deadLetters('billing');
    await waitFor(async () => (await dlq.count()) === 1, { what: 'the dead letter' });
    expect(tries).toBe(1);
    expect((await dlq.peek(1))[0]?.fault?.description).toMatch(/failed \(1 try\): TransportError: no such queue/);
  });

  it('releases a message whose partitionKey function throws, then dead-letters it after a few deliveries', async () => {
    const broker = createMemoryBroker();
    bus = make(broker);
    bus
      .endpoint('billing', {
        partitionKey: (envelope) =>
          (envelope.data as { region?: string }).region?.toLowerCase() ?? envelope.key?.toLowerCase(),
      })
      .handle(Charge, () => {});
    await bus.start();
    await bus.send('billing', Charge, { amount: 1 }, { key: 'k' });
    await bus.transport.send('billing', {
      messageId: 'x',
      body: Buffer.from(
        JSON.stringify({
          specversion: '1.0',
          id: 'bad-key',
          source: 's',
          type: Charge.type,
          time: '2026-01-01T00:00:00Z',
          subject: 'k',
          data: { amount: 1, region: 7 },
        }),
      ),
      headers: {},
      contentType: 'application/json',
      key: undefined,
      messageType: Charge.type,
    });
    const dlq = bus.deadLetters('billing');
    await waitFor(async () => (await dlq.count()) === 1, { timeoutMs: 15_000 });
    const [dead] = await dlq.peek();
    expect(dead?.fault?.reason).toBe('permanent-failure');
    expect(dead?.fault?.description).toMatch(
      /the pipeline failed unexpectedly on 5 deliveries: .*partitionKey function threw/,
    );
    expect(bus.health().endpoints.billing?.counters.completed).toBe(1);
  }, 20_000);

  it('keeps credentials out of logs and dead-letter faults when an error message carries a URL', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _e, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const broker = createMemoryBroker();
    bus = make(broker, pino({ level: 'info' }, sink));
    bus.endpoint('billing', { retry: { kind: 'immediate', retries: 1 } }).handle(Charge, (c) => {
      if (c.amount > 0) throw new Error('connect failed: postgres://app:hunter2@db:5432/prod');
      throw new PermanentError('no');
    });
    await bus.start();
    await bus.send('billing', Charge, { amount: 1 });
    const dlq = bus.deadLetters('billing');
    await waitFor(async () => (await dlq.count()) === 1);
    const [dead] = await dlq.peek();
    expect(dead?.fault?.errorMessage).toBe('connect failed: postgres://app:***@db:5432/prod');
    expect(dead?.fault?.description).not.toContain('hunter2');
    expect(dead?.fault?.stack).not.toContain('hunter2');
    expect(lines.join('')).toContain('app:***@db');
    expect(lines.join('')).not.toContain('hunter2');
  });
});

describe('memory inbox under concurrent claims', () => {
  it('runs the work once when runOnce and two runBatch calls claim the same id together', async () => {
    const inbox = new MemoryInbox();
    const entry = {
      endpoint: 'e',
      messageId: 'x',
      messageType: 't',
      key: undefined,
      occurredAt: '2026-01-01T00:00:00Z',
      receivedAt: new Date(),
      attempts: 1,
      envelopeJson: undefined,
    };
    let runs = 0;
    const slow = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 20));
    };
    const results = await Promise.all([
      inbox.runOnce(entry, async () => {
        await slow();
        return { result: 'once' };
      }),
      inbox.runBatch([entry], async (_tx, fresh) => {
        if (fresh[0]) await slow();
        return [fresh[0] ? { result: 'batch' } : undefined];
      }),
      inbox.runBatch([entry], async (_tx, fresh) => {
        if (fresh[0]) await slow();
        return [fresh[0] ? { result: 'batch' } : undefined];
      }),
    ]);
    expect(runs).toBe(1);
    expect(results.flat().filter((r) => r.status === 'processed')).toHaveLength(1);
  });
});
