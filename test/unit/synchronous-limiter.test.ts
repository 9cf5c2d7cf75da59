import { describe, expect, it } from 'vitest';
import { createDeferred } from '../../src/internal/deferred.js';
import { andThen, isPromise } from '../../src/pipeline/maybe-promise.js';
import { TaskRunner } from '../support/task-runner.js';

// Issue 18: a stage's result may be the outcome itself (decided without waiting) or a promise of it.
describe('andThen over a result that may be there already', () => {
  it('applies the callback now to a value, and as a promise callback to a promise', async () => {
    expect(andThen(2, (n) => n * 10)).toBe(20);
    const later = andThen(Promise.resolve(2), (n) => n * 10);
    expect(isPromise(later)).toBe(true);
    expect(await later).toBe(20);
  });

  it('turns a throw of the callback applied now into a rejection, without calling onError (as .then does)', async () => {
    const errors: unknown[] = [];
    const result = andThen(
      1,
      () => {
        throw new Error('callback bug');
      },
      (error) => {
        errors.push(error);
        return 0;
      },
    );
    expect(isPromise(result)).toBe(true);
    await expect(result).rejects.toThrow('callback bug');
    expect(errors).toEqual([]);
  });

  it('hands a rejection to onError', async () => {
    expect(
      await andThen(
        Promise.reject(new Error('x')),
        () => 'value',
        () => 'recovered',
      ),
    ).toBe('recovered');
  });
});

describe('KeyedLimiter with tasks that finish synchronously', () => {
  it('returns the result of a task that starts at once and finishes synchronously, its key already free', () => {
    const limiter = new TaskRunner(1);
    expect(limiter.run('k', () => 'first')).toBe('first');
    expect(limiter.running).toBe(0);
    // The key and the slot are free: the next task with the key starts (and finishes) at once too.
    expect(limiter.run('k', () => 'second')).toBe('second');
  });

  it('throws on a synchronous throw of a task that started at once, after freeing its key', () => {
    const limiter = new TaskRunner(1);
    expect(() =>
      limiter.run('k', () => {
        throw new Error('task bug');
      }),
    ).toThrow('task bug');
    expect(limiter.running).toBe(0);
    expect(limiter.run('k', () => 'next')).toBe('next');
  });

  it('rejects for a waiting task that throws synchronously when its turn comes, and goes on with the next', async () => {
    const limiter = new TaskRunner(1);
    const gate = createDeferred<string>();
    const first = limiter.run('k', () => gate.promise);
    const throwing = limiter.run('k', () => {
      throw new Error('waiting task bug');
    });
    const after = limiter.run('k', () => 'after');
    gate.resolve('first');
    expect(await first).toBe('first');
    await expect(throwing).rejects.toThrow('waiting task bug');
    expect(await after).toBe('after');
    expect(limiter.running).toBe(0);
  });

  it('frees a key only once its task finished: the next one starts after it, in arrival order', async () => {
    const limiter = new TaskRunner(4);
    const order: string[] = [];
    const gate = createDeferred<void>();
    const a1 = limiter.run('a', () => gate.promise.then(() => order.push('a1:end')));
    const behind = ['a2', 'a3', 'a4'].map((name) =>
      limiter.run('a', () => {
        order.push(`${name}:start`);
        order.push(`${name}:end`);
        return name;
      }),
    );
    expect(order).toEqual([]);
    gate.resolve();
    await a1;
    expect(await Promise.all(behind)).toEqual(['a2', 'a3', 'a4']);
    expect(order).toEqual(['a1:end', 'a2:start', 'a2:end', 'a3:start', 'a3:end', 'a4:start', 'a4:end']);
  });

  it('keeps the concurrency limit while synchronous tasks start one another', async () => {
    const limiter = new TaskRunner(2);
    const gates = [createDeferred<void>(), createDeferred<void>()];
    let running = 0;
    let max = 0;
    const blocked = gates.map((g) =>
      limiter.run(undefined, () => {
        running++;
        max = Math.max(max, running);
        return g.promise.then(() => {
          running--;
        });
      }),
    );
    const quick = Array.from({ length: 50 }, (_, i) =>
      limiter.run(`k${i % 5}`, () => {
        running++;
        max = Math.max(max, running);
        running--;
        return i;
      }),
    );
    expect(limiter.waiting).toBe(50);
    for (const g of gates) g.resolve();
    await Promise.all(blocked);
    expect(await Promise.all(quick)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(max).toBe(2);
  });

  it('starts 100,000 synchronous tasks waiting behind one key without growing the stack', async () => {
    const limiter = new TaskRunner(1);
    const gate = createDeferred<void>();
    const first = limiter.run('k', () => gate.promise);
    let ran = 0;
    const waiting = Array.from({ length: 100_000 }, () => limiter.run('k', () => ++ran));
    expect(limiter.waiting).toBe(100_000);
    gate.resolve();
    await first;
    const results = await Promise.all(waiting);
    expect(ran).toBe(100_000);
    expect(results[99_999]).toBe(100_000);
    expect(limiter.running).toBe(0);
    expect(limiter.waiting).toBe(0);
  });

  it('starts 100,000 synchronous tasks waiting for a slot without growing the stack', async () => {
    const limiter = new TaskRunner(1);
    const gate = createDeferred<void>();
    const first = limiter.run(undefined, () => gate.promise);
    let ran = 0;
    const waiting = Array.from({ length: 100_000 }, (_, i) =>
      limiter.run(i % 2 === 0 ? undefined : `k${i}`, () => ++ran),
    );
    gate.resolve();
    await first;
    await Promise.all(waiting);
    expect(ran).toBe(100_000);
    expect(limiter.running).toBe(0);
  });
});
