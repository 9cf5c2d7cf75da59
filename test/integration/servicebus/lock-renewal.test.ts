import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessage } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { type ServiceBusFixture, startServiceBusFixture } from './servicebus-fixture.js';

const Slow = defineMessage('tests.slow-work.v1', z.object({ n: z.number() }));
const LOCK_MS = 1_000;

describe('Service Bus transport: locks', () => {
  let f: ServiceBusFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('renews the lock of a handler that runs longer than the lock: completed once, not redelivered', async () => {
    f = await startServiceBusFixture();
    const bus = f.bus('locks', { createdQueues: { lockDurationMs: LOCK_MS, maxDeliveryCount: 10 } });
    const endpoint = `slow-${randomUUID().slice(0, 8)}`;
    const runs: number[] = [];
    let finished = false;
    bus.endpoint(endpoint, { retry: { kind: 'none' } }).handle(Slow, async (_m, ctx) => {
      runs.push(ctx.deliveryCount);
      // Outlive the lock 2.5 times over: only renewal keeps it.
      await new Promise((r) => setTimeout(r, LOCK_MS * 2.5));
      finished = true;
    });
    await bus.start();
    await bus.send(endpoint, Slow, { n: 1 });
    await waitFor(() => bus.health().endpoints[endpoint]?.counters.completed === 1, {
      timeoutMs: 10_000,
      what: 'completion',
    });
    expect(finished).toBe(true);
    expect(runs).toEqual([1]);
    expect(bus.health().endpoints[endpoint]?.counters.settleFailures).toBe(0);
    expect(f.emulator.messages(endpoint)).toHaveLength(0);
  });

  it('a lock lost while the handler runs: settling reports LockLostError and the broker redelivers', async () => {
    f = await startServiceBusFixture();
    const lines: { msg?: string; err?: { type?: string; code?: string } }[] = [];
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(JSON.parse(String(chunk)));
        callback();
      },
    });
    const bus = f.bus(
      'locks',
      { createdQueues: { lockDurationMs: LOCK_MS, maxDeliveryCount: 10 }, maxAutoLockRenewalDurationMs: 0 },
      pino({ level: 'warn' }, sink),
    );
    const endpoint = `lost-${randomUUID().slice(0, 8)}`;
    const runs: number[] = [];
    bus.endpoint(endpoint, { retry: { kind: 'none' }, concurrency: 2 }).handle(Slow, async (_m, ctx) => {
      runs.push(ctx.deliveryCount);
      if (ctx.deliveryCount === 1) await new Promise((r) => setTimeout(r, LOCK_MS * 2));
    });
    await bus.start();
    await bus.send(endpoint, Slow, { n: 1 });
    const counters = () => bus.health().endpoints[endpoint]?.counters;
    await waitFor(() => counters()?.completed === 1 && counters()?.settleFailures === 1, {
      timeoutMs: 10_000,
      what: 'redelivered completion and the lost first settlement',
    });
    // The redelivery (deliveryCount 2) completed; the first run's completion was refused as lock lost.
    expect(runs).toEqual([1, 2]);
    const lost = lines.find((l) => l.err?.type === 'LockLostError');
    expect(lost?.err?.code).toBe('SLUICE_LOCK_LOST');
    expect(f.emulator.messages(endpoint)).toHaveLength(0);
  });
});
