import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessage } from '../../src/index.js';
import { createTestHarness, type TestHarness } from '../../src/testing/index.js';

/**
 * Waits between attempts and redeliveries the handler asks for (issue 19, items 11 and 13; issue
 * 20, item 13): one handler run at a time per message, no starved event loop, no listener leak.
 * On sluice/testing: the waits and lock timeouts run in virtual time.
 */
const Job = defineMessage('test.job.v1', z.object({ n: z.number().int() }));

describe('in-process waits', () => {
  let harness: TestHarness | undefined;
  const start = (lockTimeoutMs?: number) => {
    harness = createTestHarness(
      lockTimeoutMs === undefined ? {} : { config: { transport: { kind: 'memory', lockTimeoutMs } } },
    );
    return harness;
  };
  afterEach(async () => {
    await harness?.stop();
  });

  it('keeps the lock through a retry wait longer than the lock: one run at a time, no second copy', async () => {
    const h = start(200);
    let running = 0;
    let mostAtOnce = 0;
    const runs: string[] = [];
    for (const [name, bus] of [h.bus, h.addInstance()].entries()) {
      bus.endpoint('jobs', { retry: { kind: 'intervals', delaysMs: [1_000] } }).handle(Job, async (_job, ctx) => {
        runs.push(`${name}:${ctx.attempt}`);
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        await h.delay(10);
        running--;
        if (ctx.attempt === 1) throw new Error('database busy');
      });
    }
    await h.start();
    await h.send('jobs', Job, { n: 1 });
    await h.settled();
    // Five lock timeouts of waiting: the lock was renewed throughout, so no copy ever went to the other consumer.
    expect(runs).toHaveLength(2);
    expect(runs.map((r) => r.split(':')[1])).toEqual(['1', '2']);
    expect(new Set(runs.map((r) => r.split(':')[0])).size).toBe(1);
    expect(mostAtOnce).toBe(1);
    expect(h.outcomes.map((o) => [o.outcome?.kind, o.deliveryCount])).toEqual([['completed', 1]]);
  });

  it('does not run the handler again when its lock was lost before the wait: the broker copy runs it', async () => {
    const h = start(100);
    const runs: { consumer: number; attempt: number; deliveryCount: number }[] = [];
    for (const [consumer, bus] of [h.bus, h.addInstance()].entries()) {
      bus.endpoint('jobs', { retry: { kind: 'intervals', delaysMs: [200] } }).handle(Job, async (_job, ctx) => {
        runs.push({ consumer, attempt: ctx.attempt, deliveryCount: ctx.deliveryCount });
        if (ctx.deliveryCount === 1) {
          // Outlives the lock: the broker hands the message to the other consumer meanwhile.
          await h.delay(400);
          throw new Error('slow and failed');
        }
      });
    }
    await h.start();
    await h.send('jobs', Job, { n: 1 });
    await h.settled();
    // The first consumer's retry wait found its lock gone and gave up: two runs, not three.
    expect(runs).toHaveLength(2);
    expect(runs.map((r) => r.deliveryCount)).toEqual([1, 2]);
    expect(new Set(runs.map((r) => r.consumer)).size).toBe(2);
    // The first delivery could not be settled (lock lost); the broker's copy completed.
    expect(h.outcomes.map((o) => [o.outcome?.kind, o.deliveryCount])).toEqual([
      ['completed', 2],
      [undefined, 1],
    ]);
  });

  it('lets more than ten messages wait in process at once without a MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const h = start();
      h.bus
        .endpoint('jobs', { concurrency: 30, retry: { kind: 'intervals', delaysMs: [100] } })
        .handle(Job, async (_job, ctx) => {
          if (ctx.attempt === 1) throw new Error('try again');
        });
      await h.start();
      for (let n = 0; n < 30; n++) await h.send('jobs', Job, { n });
      await h.settled();
      expect(h.consumed(Job)).toHaveLength(30);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('ctx.retryLater()', () => {
  let harness: TestHarness | undefined;
  afterEach(async () => {
    await harness?.stop();
  });

  it('waits at least retryLater.minDelayMs, whatever the handler asks', async () => {
    const h = createTestHarness();
    harness = h;
    const at: number[] = [];
    h.bus.endpoint('jobs', { retryLater: { minDelayMs: 200 } }).handle(Job, async (_job, ctx) => {
      at.push(h.clock?.now() ?? 0);
      if (ctx.attempt === 1) ctx.retryLater(0);
    });
    await h.start();
    await h.send('jobs', Job, { n: 1 });
    await h.settled();
    expect((at[1] ?? 0) - (at[0] ?? 0)).toBe(200);
  });

  it('dead-letters a message once it asked for later on retryLater.maxAttempts', async () => {
    const h = createTestHarness();
    harness = h;
    let runs = 0;
    h.bus.endpoint('jobs', { retryLater: { minDelayMs: 1, maxAttempts: 4 } }).handle(Job, async (_job, ctx) => {
      runs++;
      ctx.retryLater(1, 'upstream record not there yet');
    });
    await h.start();
    await h.send('jobs', Job, { n: 1 });
    await h.settled();
    expect(runs).toBe(4);
    expect(h.deadLettered(Job)[0]?.fault).toMatchObject({
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
