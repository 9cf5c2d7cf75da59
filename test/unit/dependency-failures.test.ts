import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  DependencyError,
  defineMessage,
  type EndpointOptions,
  type HandleOptions,
  type Handler,
  type MessageOf,
  SluiceHeader,
  TransportError,
} from '../../src/index.js';
import { dependencyDelayMs } from '../../src/retry/dependency-failure.js';
import { createTestHarness, type TestHarness } from '../../src/testing/index.js';

// On sluice/testing: backoffs run in virtual time, each test awaits `settled()` instead of polling.
const Charge = defineMessage('billing.charge.v1', z.object({ n: z.number().int() }));

class PaymentsUnavailable extends Error {
  override name = 'PaymentsUnavailable';
}

describe('dependency failures', () => {
  let harness: TestHarness | undefined;
  const billing = async (
    options: EndpointOptions,
    handler: Handler<MessageOf<typeof Charge>>,
    handleOptions: HandleOptions<MessageOf<typeof Charge>> = {},
  ) => {
    harness = createTestHarness();
    harness.bus.endpoint('billing', options).handle(Charge, handler, handleOptions);
    await harness.start();
    return harness;
  };
  /** The kill switch's dependency rule off: these tests watch single messages. */
  const quick: EndpointOptions = {
    dependencyBackoffMs: { initial: 5_000, factor: 2, max: 20_000 },
    killSwitch: { dependencyFailures: false },
  };
  afterEach(async () => {
    await harness?.stop();
  });

  it('spends no attempt, never dead-letters, and comes back until the dependency answers', async () => {
    const seen: { attempt: number; deliveryCount: number }[] = [];
    let down = 4;
    const h = await billing({ ...quick, retry: { kind: 'none' } }, async (_m, ctx) => {
      seen.push({ attempt: ctx.attempt, deliveryCount: ctx.deliveryCount });
      if (down-- > 0) throw new DependencyError('payments API: 503', { dependency: 'payments-api' });
    });
    await h.send('billing', Charge, { n: 1 });
    await h.settled();
    // Retry policy "none": one handler failure would have dead-lettered it. Four dependency
    // failures cost no attempt: the fifth delivery is still attempt 1.
    expect(seen.map((s) => s.attempt)).toEqual([1, 1, 1, 1, 1]);
    expect(seen.map((s) => s.deliveryCount)).toEqual([1, 2, 3, 4, 5]);
    expect(h.deadLettered()).toEqual([]);
    expect(h.bus.health().endpoints.billing?.counters).toMatchObject({
      completed: 1,
      deadLettered: 0,
      retried: 0,
      released: 4,
      dependencyFailures: 4,
    });
  });

  it('releases with a growing delay, counting the failures in a header and leaving the attempt count alone', async () => {
    let down = 3;
    const h = await billing(
      { ...quick, dependencyBackoffMs: { initial: 40_000, factor: 2, max: 1_000_000 } },
      async () => {
        if (down-- > 0) throw new DependencyError('down');
      },
    );
    const started = h.clock?.now() ?? 0;
    await h.send('billing', Charge, { n: 1 });
    await h.settled();
    const releases = h.outcomes.flatMap((o) =>
      o.outcome?.kind === 'released' && o.outcome.reason === 'dependency' ? [o.outcome] : [],
    );
    expect(releases.map((r) => r.headers[SluiceHeader.dependencyFailures])).toEqual(['1', '2', '3']);
    expect(releases.map((r) => r.headers[SluiceHeader.attempts])).toEqual([undefined, undefined, undefined]);
    // initial × factor^(n − 1), drawn from [d/2, d]: up to 40 s, 80 s, 160 s; the clock waited each.
    const delays = releases.map((r) => r.delayMs);
    for (const [i, d] of [40_000, 80_000, 160_000].entries()) {
      expect(delays[i]).toBeGreaterThanOrEqual(d / 2);
      expect(delays[i]).toBeLessThanOrEqual(d);
    }
    expect((h.clock?.now() ?? 0) - started).toBe(delays.reduce((sum, d) => sum + d, 0));
    expect(h.consumed(Charge)).toEqual([expect.objectContaining({ attempt: 1, deliveryCount: 4 })]);

    const backoff = { initial: 1_000, factor: 2, max: 60_000 };
    expect(dependencyDelayMs(1, backoff, () => 0)).toBe(1_000);
    expect(dependencyDelayMs(3, backoff, () => 0)).toBe(4_000);
    expect(dependencyDelayMs(30, backoff, () => 0)).toBe(60_000);
    expect(dependencyDelayMs(3, backoff, () => 1)).toBe(2_000);
  });

  it('keeps the attempts a message already spent, and spends none for the dependency', async () => {
    const attempts: number[] = [];
    const h = await billing({ ...quick, retry: { kind: 'immediate', retries: 5 } }, async (_m, ctx) => {
      attempts.push(ctx.attempt);
      if (ctx.attempt === 1) throw new Error('flaky');
      if (ctx.attempt === 2 && ctx.deliveryCount === 1) throw new DependencyError('database failover');
    });
    await h.send('billing', Charge, { n: 1 });
    await h.settled();
    // Attempt 1 failed (spent), attempt 2 met the dependency failure (not spent): it runs again as attempt 2.
    expect(attempts).toEqual([1, 2, 2]);
  });

  it('counts a broker that cannot take a publish as a dependency failure, and a message it can never take as the handler’s', async () => {
    const Follow = defineMessage('billing.follow-up.v1', z.object({}));
    const seen: number[] = [];
    let refused = 2;
    const h = await billing({ ...quick, retry: { kind: 'none' } }, async (_m, ctx) => {
      seen.push(ctx.attempt);
      // What a transport throws when the broker is down while the handler publishes straight to it.
      if (refused-- > 0) throw new TransportError('cannot publish: the connection is closed', { retryable: true });
      await ctx.publish(Follow, {});
    });
    await h.send('billing', Charge, { n: 1 });
    await h.settled();
    expect(seen).toEqual([1, 1, 1]);
    expect(h.deadLettered()).toEqual([]);
    expect(h.published(Follow)).toHaveLength(1);
    await h.stop();

    const c = await billing({ ...quick, retry: { kind: 'none' } }, async () => {
      throw new TransportError('message id over the broker limit', { retryable: false });
    });
    await c.send('billing', Charge, { n: 2 });
    await c.settled();
    expect(c.deadLettered()).toHaveLength(1);
  });

  it('finds a DependencyError in the cause chain of what the handler threw', async () => {
    let down = true;
    const h = await billing({ ...quick, retry: { kind: 'none' } }, async () => {
      if (down) {
        down = false;
        throw new Error('charging failed', { cause: new DependencyError('ledger service timed out') });
      }
    });
    await h.send('billing', Charge, { n: 1 });
    await h.settled();
    expect(h.consumed(Charge)).toHaveLength(1);
    expect(h.bus.health().endpoints.billing?.counters).toMatchObject({ deadLettered: 0, dependencyFailures: 1 });
  });

  it('marks error types as dependency failures per endpoint and per handler', async () => {
    let endpointLevel = true;
    let handlerLevel = true;
    const h = await billing(
      { ...quick, retry: { kind: 'none' }, dependencyErrors: [PaymentsUnavailable] },
      async (m) => {
        if (m.n === 1 && endpointLevel) {
          endpointLevel = false;
          throw new PaymentsUnavailable('payments: connection refused');
        }
        if (m.n === 2 && handlerLevel) {
          handlerLevel = false;
          throw Object.assign(new Error('HTTP 503'), { status: 503 });
        }
        if (m.n === 3) throw new Error('declined: not a dependency');
      },
      { dependencyErrors: [(e) => (e as { status?: number }).status === 503] },
    );
    for (const n of [1, 2, 3]) await h.send('billing', Charge, { n });
    await h.settled();
    expect(
      h
        .consumed(Charge)
        .map((c) => c.message.n)
        .sort(),
    ).toEqual([1, 2]);
    expect(h.bus.health().endpoints.billing?.counters.dependencyFailures).toBe(2);
    expect(h.deadLettered(Charge).map((d) => d.fault.errorMessage)).toEqual(['declined: not a dependency']);
  });

  it('never shows ctx.deadLetter() or ctx.retryLater() to the dependency matchers', async () => {
    const h = await billing(
      { ...quick, dependencyErrors: [(e) => (e as Error).message.includes('unavailable')] },
      async (_m, ctx) => ctx.deadLetter('customer blocked'),
    );
    await h.send('billing', Charge, { n: 1 });
    await h.settled();
    expect(h.deadLettered(Charge).map((d) => d.fault.reason)).toEqual(['handler-dead-lettered']);
  });

  it('trips the kill switch after dependencyFailures in a row, naming what failed, and dead-letters nothing', async () => {
    const h = await billing(
      {
        dependencyBackoffMs: { initial: 5, factor: 2, max: 20 },
        concurrency: 4,
        retry: { kind: 'none' },
        killSwitch: { dependencyFailures: 3, restartDelayMs: { initial: 60_000, max: 60_000 } },
      },
      async () => {
        throw new DependencyError('connect ECONNREFUSED 10.0.0.5:5432', { dependency: 'inbox (postgres)' });
      },
    );
    const trips: string[] = [];
    h.bus.on('killswitch.tripped', (e) => {
      trips.push(e.reason);
    });
    for (let n = 0; n < 50; n++) await h.send('billing', Charge, { n });
    // Up to the moment it would probe: tripped, every message back on the queue.
    await h.advance(59_999);
    expect(trips).toEqual(['3 consecutive dependency failures (inbox (postgres))']);
    expect(h.deadLettered()).toEqual([]);
    expect(h.bus.killSwitch('billing').view()).toMatchObject({
      state: 'tripped',
      consecutiveDependencyFailures: 3,
      lastFailure: {
        reason: 'dependency',
        description: 'inbox (postgres) failed: DependencyError: connect ECONNREFUSED 10.0.0.5:5432',
      },
    });
    expect(h.bus.health().endpoints.billing?.inFlight).toBe(0);
    expect(h.broker.queue('billing').readyCount).toBe(50);
  });
});
