import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineMessage, type TransportDefinition } from '../../../src/index.js';
import { sqliteInbox } from '../../../src/inbox/sqlite/index.js';
import { serviceBusTransport } from '../../../transports/servicebus/index.js';
import { type ServiceBusEmulator, startServiceBusEmulator } from '../../infra/servicebus/start-service-bus-emulator.js';
import { sqliteStore } from '../inbox/stores.js';
import { waitFor } from '../../support/wait-for.js';
import { emulatorAdministration } from './emulator-administration.js';

const Charge = defineMessage('tests.charge.v1', z.object({ amount: z.number() }));
const LOCK_MS = 1_000;

describe('Service Bus: a lost lock with the inbox', () => {
  let emulator: ServiceBusEmulator | undefined;
  afterEach(async () => {
    await emulator?.close();
  });

  it('redelivers the message and the inbox keeps the effect single', async () => {
    emulator = await startServiceBusEmulator({ port: 0 });
    const em = emulator;
    const definition = serviceBusTransport({ administration: emulatorAdministration(() => em) }) as TransportDefinition;
    const { path } = sqliteStore();
    const bus = createBus(
      {
        service: 'lock-loss',
        transport: {
          kind: 'servicebus',
          connectionString: em.connectionString,
          entities: 'create',
          createdQueues: { lockDurationMs: LOCK_MS, maxDeliveryCount: 10 },
          maxAutoLockRenewalDurationMs: 0,
        },
        inbox: { kind: 'sqlite', path },
        shutdown: { signals: [], timeoutMs: 5_000 },
      },
      { transports: [definition], inbox: sqliteInbox(), logger: pino({ level: 'silent' }) },
    );
    const endpoint = `charges-${randomUUID().slice(0, 8)}`;
    const runs: number[] = [];
    bus.endpoint(endpoint, { retry: { kind: 'none' }, concurrency: 2 }).handle(Charge, async (c, ctx) => {
      runs.push(ctx.deliveryCount);
      ctx.tx.exec('CREATE TABLE IF NOT EXISTS charges (message_id TEXT, amount REAL)');
      ctx.tx.prepare('INSERT INTO charges VALUES (?, ?)').run(ctx.messageId, c.amount);
      // The first run outlives its lock (renewal off): the broker redelivers while it still runs.
      if (ctx.deliveryCount === 1) await new Promise((r) => setTimeout(r, LOCK_MS * 2));
    });
    await bus.start();
    await bus.send(endpoint, Charge, { amount: 5 }, { id: 'charge-1' });
    const counters = () => bus.health().endpoints[endpoint]?.counters;
    // A redelivery waiting for the first run's transaction may lose its own lock too (SQLite runs one
    // transaction at a time): whichever delivery settles last finds the message processed.
    await waitFor(() => (counters()?.settleFailures ?? 0) >= 1 && (counters()?.skippedByReason?.duplicate ?? 0) >= 1, {
      timeoutMs: 15_000,
      what: 'the lost settlement and the duplicate redelivery',
    });
    await waitFor(() => em.messages(endpoint).length === 0, { what: 'the queue to be empty' });
    await bus.stop();
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path, { readonly: true });
    const { n } = db.prepare('SELECT count(*) AS n FROM charges').get() as { n: number };
    db.close();
    // The redelivery waited for the first run's transaction and found the message processed.
    expect(n).toBe(1);
    expect(runs).toEqual([1]);
    expect(counters()?.completed).toBe(0);
  });
});
