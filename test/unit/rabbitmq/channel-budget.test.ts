import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/internal/clock.js';
import { TransportError } from '../../../src/transport-core/index.js';
import { ChannelBudget } from '../../../transports/rabbitmq/channel-budget.js';

describe('channel budget', () => {
  it('never has more than its bound in use; waiters get slots in arrival order', async () => {
    const budget = new ChannelBudget(2, new ManualClock());
    const order: number[] = [];
    const a = await budget.acquire(1_000, 'a');
    const b = await budget.acquire(1_000, 'b');
    const waiting = [3, 4, 5].map((n) =>
      budget.acquire(1_000, String(n)).then((release) => {
        order.push(n);
        return release;
      }),
    );
    await Promise.resolve();
    expect(budget.inUse).toBe(2);
    expect(order).toEqual([]);
    a();
    a(); // idempotent: a second call frees nothing more
    const third = await waiting[0];
    expect(order).toEqual([3]);
    expect(budget.inUse).toBe(2);
    b();
    third?.();
    const [fourth, fifth] = await Promise.all([waiting[1], waiting[2]]);
    expect(order).toEqual([3, 4, 5]);
    fourth?.();
    fifth?.();
    expect(budget.inUse).toBe(0);
  });

  it('fails a waiter whose deadline passes, and its turn goes to the next one', async () => {
    const clock = new ManualClock();
    const budget = new ChannelBudget(1, clock);
    const held = await budget.acquire(1_000, 'held');
    const early = budget.acquire(100, 'declaring exchange "x"');
    const late = budget.acquire(10_000, 'late');
    clock.advance(100);
    const error = await early.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/declaring exchange "x": no channel free within 100 ms/);
    held();
    const release = await late;
    expect(budget.inUse).toBe(1);
    release();
    expect(budget.inUse).toBe(0);
  });
});
