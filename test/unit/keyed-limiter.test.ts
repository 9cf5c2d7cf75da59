import { describe, expect, it } from 'vitest';
import { KeyedLimiter } from '../../src/pipeline/keyed-limiter.js';
import { WaitGauge } from '../../src/internal/wait-gauge.js';
import { CANCELLED, TaskRunner } from '../support/task-runner.js';
import { createDeferred } from '../../src/internal/deferred.js';

describe('KeyedLimiter', () => {
  it('runs at most `concurrency` tasks at once', async () => {
    const limiter = new TaskRunner(2);
    const gate = createDeferred<void>();
    let running = 0;
    let max = 0;
    const runs = Array.from({ length: 6 }, () =>
      limiter.run(undefined, async () => {
        running++;
        max = Math.max(max, running);
        await gate.promise;
        running--;
      }),
    );
    await new Promise((r) => setImmediate(r));
    expect(limiter.running).toBe(2);
    expect(limiter.waiting).toBe(4);
    gate.resolve();
    await Promise.all(runs);
    expect(max).toBe(2);
  });

  it('runs same-key tasks one after another in arrival order while other keys proceed', async () => {
    const limiter = new TaskRunner(4);
    const order: string[] = [];
    const a1 = createDeferred<void>();
    const p1 = limiter.run('a', async () => {
      order.push('a1:start');
      await a1.promise;
      order.push('a1:end');
    });
    const p2 = limiter.run('a', async () => {
      order.push('a2');
    });
    const p3 = limiter.run('b', async () => {
      order.push('b1');
    });
    await p3;
    expect(order).toEqual(['a1:start', 'b1']);
    a1.resolve();
    await Promise.all([p1, p2]);
    expect(order).toEqual(['a1:start', 'b1', 'a1:end', 'a2']);
  });

  it('cancels waiting tasks but lets running ones finish', async () => {
    const limiter = new TaskRunner(1);
    const gate = createDeferred<void>();
    const running = limiter.run('k', () => gate.promise.then(() => 'done'));
    const waiting = limiter.run('k', async () => 'never');
    const other = limiter.run(undefined, async () => 'never');
    limiter.cancelWaiting();
    expect(await waiting).toBe(CANCELLED);
    expect(await other).toBe(CANCELLED);
    gate.resolve();
    expect(await running).toBe('done');
    expect(limiter.running).toBe(0);
    expect(limiter.waiting).toBe(0);
  });

  it('frees the slot when a task throws', async () => {
    const limiter = new TaskRunner(1);
    await expect(limiter.run('k', async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(await limiter.run('k', async () => 'next')).toBe('next');
  });
});

describe('KeyedLimiter after cancelling', () => {
  it('frees a key whose next task was cancelled while waiting for a slot', async () => {
    const limiter = new TaskRunner(1);
    const gate = createDeferred<void>();
    const running = limiter.run('a', () => gate.promise);
    const first = limiter.run('b', async () => 'b1'); // waits for the slot, holding key b
    const behind = limiter.run('b', async () => 'b2'); // waits behind key b
    limiter.cancelWaiting();
    expect(await first).toBe(CANCELLED);
    expect(await behind).toBe(CANCELLED);
    gate.resolve();
    await running;
    expect(await limiter.run('b', async () => 'again')).toBe('again');
    expect(await limiter.run('a', async () => 'a again')).toBe('a again');
    expect(limiter.waiting).toBe(0);
  });

  it("queues the caller's own objects, hands each to start once, and gives back those not started", () => {
    interface Job {
      readonly scheduleKey: string | undefined;
      readonly name: string;
    }
    const started: Job[] = [];
    const waits = new WaitGauge();
    const limiter = new KeyedLimiter<Job>(1, (job) => started.push(job), waits);
    const a1 = { scheduleKey: 'a', name: 'a1' };
    const a2 = { scheduleKey: 'a', name: 'a2' };
    const free = { scheduleKey: undefined, name: 'free' };
    const b1 = { scheduleKey: 'b', name: 'b1' };
    for (const job of [a1, a2, free, b1]) limiter.submit(job);
    // a1 runs; a2 waits behind its key, the others for the slot.
    expect(started).toEqual([a1]);
    expect(waits.waiting).toBe(3);
    limiter.done(a1);
    // The slot goes to the first ready job (free), a2 queues behind it: submission order per key.
    expect(started).toEqual([a1, free]);
    expect(limiter.cancelWaiting()).toEqual([b1, a2]);
    expect(waits.waiting).toBe(0);
    limiter.done(free);
    expect(limiter.running).toBe(0);
    // Both keys are free again.
    limiter.submit(a2);
    limiter.done(a2);
    limiter.submit(b1);
    expect(started).toEqual([a1, free, a2, b1]);
  });
});
