import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  type BusConfigInput,
  createBus,
  createMemoryBroker,
  defineMessage,
  type MemoryBroker,
  memoryTransport,
} from '../../src/index.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Waits between attempts and redeliveries the handler asks for (issue 19, items 11 and 13; issue
 * 20, item 13): one handler run at a time per message, no starved event loop, no listener leak.
 */
const Job = defineMessage('test.job.v1', z.object({ n: z.number().int() }));
const silent = pino({ level: 'silent' });

describe('in-process waits', () => {
  const buses: Bus[] = [];
  const bus = (broker: MemoryBroker, config: BusConfigInput = {}) => {
    const b = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 }, ...config },
      { transports: [memoryTransport({ broker })], logger: silent },
    );
    buses.push(b);
    return b;
  };
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
  });

  it('keeps the lock through a retry wait longer than the lock: one run at a time, no second copy', async () => {
    const broker = createMemoryBroker({ lockTimeoutMs: 200 });
    let running = 0;
    let mostAtOnce = 0;
    const runs: string[] = [];
    for (const name of ['a', 'b']) {
      bus(broker)
        .endpoint('jobs', { retry: { kind: 'intervals', delaysMs: [1_000] } })
        .handle(Job, async (_job, ctx) => {
          runs.push(`${name}:${ctx.attempt}`);
          running++;
          mostAtOnce = Math.max(mostAtOnce, running);
          await new Promise((resolve) => setTimeout(resolve, 10));
          running--;
          if (ctx.attempt === 1) throw new Error('database busy');
        });
    }
    for (const b of buses) await b.start();
    await buses[0]?.send('jobs', Job, { n: 1 });
    await waitFor(() => buses.some((b) => b.health().endpoints.jobs?.counters.completed === 1), { timeoutMs: 5_000 });
    // Long enough for a lost lock to have been redelivered (five lock timeouts).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(runs).toHaveLength(2);
    expect(runs.map((r) => r.split(':')[1])).toEqual(['1', '2']);
    expect(mostAtOnce).toBe(1);
  });

  it('does not run the handler again when its lock was lost before the wait: the broker copy runs it', async () => {
    const broker = createMemoryBroker({ lockTimeoutMs: 100 });
    const runs: { consumer: string; attempt: number; deliveryCount: number }[] = [];
    for (const name of ['a', 'b']) {
      bus(broker)
        .endpoint('jobs', { retry: { kind: 'intervals', delaysMs: [200] } })
        .handle(Job, async (_job, ctx) => {
          runs.push({ consumer: name, attempt: ctx.attempt, deliveryCount: ctx.deliveryCount });
          if (ctx.deliveryCount === 1) {
            // Outlives the lock: the broker hands the message to the other consumer meanwhile.
            await new Promise((resolve) => setTimeout(resolve, 400));
            throw new Error('slow and failed');
          }
        });
    }
    for (const b of buses) await b.start();
    await buses[0]?.send('jobs', Job, { n: 1 });
    await waitFor(() => buses.some((b) => b.health().endpoints.jobs?.counters.completed === 1), { timeoutMs: 5_000 });
    await waitFor(() => buses.every((b) => b.health().endpoints.jobs?.inFlight === 0), { timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    // The first consumer's retry wait found its lock gone and gave up: two runs, not three.
    expect(runs).toHaveLength(2);
    expect(runs.map((r) => r.deliveryCount)).toEqual([1, 2]);
  });

  it('lets more than ten messages wait in process at once without a MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const b = bus(createMemoryBroker());
      b.endpoint('jobs', { concurrency: 30, retry: { kind: 'intervals', delaysMs: [100] } }).handle(
        Job,
        async (_job, ctx) => {
          if (ctx.attempt === 1) throw new Error('try again');
        },
      );
      await b.start();
      for (let n = 0; n < 30; n++) await b.send('jobs', Job, { n });
      await waitFor(() => b.health().endpoints.jobs?.counters.completed === 30);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('ctx.retryLater()', () => {
  const buses: Bus[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
  });

  it('waits at least retryLater.minDelayMs, whatever the handler asks', async () => {
    const b = createBus(
      { shutdown: { signals: [] } },
      { transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    buses.push(b);
    const at: number[] = [];
    b.endpoint('jobs', { retryLater: { minDelayMs: 200 } }).handle(Job, async (_job, ctx) => {
      at.push(performance.now());
      if (ctx.attempt === 1) ctx.retryLater(0);
    });
    await b.start();
    await b.send('jobs', Job, { n: 1 });
    await waitFor(() => b.health().endpoints.jobs?.counters.completed === 1);
    expect((at[1] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(195);
  });

  it('dead-letters a message once it asked for later on retryLater.maxAttempts', async () => {
    const b = createBus(
      { shutdown: { signals: [] } },
      { transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    buses.push(b);
    let runs = 0;
    b.endpoint('jobs', { retryLater: { minDelayMs: 1, maxAttempts: 4 } }).handle(Job, async (_job, ctx) => {
      runs++;
      ctx.retryLater(1, 'upstream record not there yet');
    });
    await b.start();
    await b.send('jobs', Job, { n: 1 });
    const dlq = b.deadLetters('jobs');
    await waitFor(async () => (await dlq.count()) === 1);
    expect(runs).toBe(4);
    expect((await dlq.peek())[0]?.fault).toMatchObject({
      reason: 'retries-exhausted',
      attempts: 4,
      description:
        'ctx.retryLater() on attempt 4; the endpoint allows 4 (retryLater.maxAttempts); last reason: upstream record not there yet',
    });
  });

  it('does not starve the event loop when a handler asks again and again for no delay (memory transport)', async () => {
    const script = fileURLToPath(new URL('./fixtures/retry-later-zero-service.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => {
      out += String(c);
    });
    child.stderr.on('data', (c) => {
      out += String(c);
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // A starved child never runs its 100 ms timer; this bound only ends the test then.
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await exited;
    clearTimeout(killer);
    expect(out).toMatch(/TIMER FIRED after \d+ run\(s\)/);
    expect(code).toBe(0);
  }, 30_000);
});
