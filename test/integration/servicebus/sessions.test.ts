import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessage } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { type ServiceBusFixture, startServiceBusFixture } from './servicebus-fixture.js';

const Step = defineMessage('tests.account-step.v1', z.object({ account: z.string(), seq: z.number() }));

describe('Service Bus transport: sessions', () => {
  let f: ServiceBusFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('keeps per-key order across two competing consumers: the envelope key is the session id', async () => {
    f = await startServiceBusFixture();
    const endpoint = `ledger-${randomUUID().slice(0, 8)}`;
    const transport = { sessions: true, sessionIdleTimeoutMs: 200, maxConcurrentSessions: 4 };
    const seen = new Map<string, number[]>();
    let handled = 0;
    const consumer = (name: string) => {
      const bus = f!.bus(name, transport);
      bus.endpoint(endpoint, { concurrency: 8, prefetch: 16, retry: { kind: 'none' } }).handle(Step, async (m, ctx) => {
        expect(ctx.key).toBe(m.account);
        await new Promise((r) => setTimeout(r, Math.random() * 4));
        const list = seen.get(m.account) ?? [];
        list.push(m.seq);
        seen.set(m.account, list);
        handled++;
      });
      return bus;
    };
    const a = consumer('ledger-a');
    const b = consumer('ledger-b');
    expect(a.transport.capabilities.ordering).toBe('session');
    await a.start();
    await b.start();
    const accounts = 8;
    const perAccount = 20;
    for (let seq = 0; seq < perAccount; seq++) {
      for (let k = 0; k < accounts; k++) {
        await a.send(endpoint, Step, { account: `acc-${k}`, seq }, { key: `acc-${k}` });
      }
    }
    await waitFor(() => handled === accounts * perAccount, { timeoutMs: 20_000, what: 'every step' });
    expect(seen.size).toBe(accounts);
    for (const [, list] of seen) expect(list).toEqual([...Array(perAccount).keys()]);
    await waitFor(() => f!.emulator.messages(endpoint).length === 0, { timeoutMs: 5_000, what: 'all completed' });
  });
});
