import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  createBus,
  createMemoryBroker,
  DependencyError,
  type Delivery,
  defineMessage,
  type EndpointOptions,
  type HandleOptions,
  type Handler,
  type MemoryBroker,
  type MessageOf,
  memoryTransport,
  SluiceHeader,
  systemClock,
  TransportError,
} from '../../src/index.js';
import { dependencyDelayMs } from '../../src/retry/dependency-failure.js';
import { waitFor } from '../support/wait-for.js';

const Charge = defineMessage('billing.charge.v1', z.object({ n: z.number().int() }));
const silent = pino({ level: 'silent' });

class PaymentsUnavailable extends Error {
  override name = 'PaymentsUnavailable';
}

describe('dependency failures', () => {
  const buses: Bus[] = [];
  let broker: MemoryBroker;
  const bus = () => {
    const b = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 } },
      { transports: [memoryTransport({ broker })], logger: silent },
    );
    buses.push(b);
    return b;
  };
  const billing = (
    options: EndpointOptions,
    handler: Handler<MessageOf<typeof Charge>>,
    handleOptions: HandleOptions<MessageOf<typeof Charge>> = {},
  ) => {
    const b = bus();
    b.endpoint('billing', options).handle(Charge, handler, handleOptions);
    return b;
  };
  /** Short backoff, and the kill switch's dependency rule off: these tests watch single messages. */
  const quick: EndpointOptions = {
    dependencyBackoffMs: { initial: 5, factor: 2, max: 20 },
    killSwitch: { dependencyFailures: false },
  };
  /** Takes the next delivery of an address off the broker, as another consumer would, and completes it. */
  const takeOne = async (address: string): Promise<Delivery> => {
    const definition = memoryTransport({ broker });
    const transport = definition.create(definition.configSchema.parse({ kind: 'memory' }), {
      logger: silent,
      clock: systemClock,
    });
    await transport.connect();
    const taken = new Promise<Delivery>((resolve) => {
      void transport.consume(address, (d) => resolve(d), { prefetch: 1 });
    });
    const delivery = await taken;
    await delivery.complete();
    await transport.close();
    return delivery;
  };

  beforeEach(() => {
    broker = createMemoryBroker();
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
  });

  it('spends no attempt, never dead-letters, and comes back until the dependency answers', async () => {
    const seen: { attempt: number; deliveryCount: number }[] = [];
    let down = 4;
    const b = billing({ ...quick, retry: { kind: 'none' } }, async (_m, ctx) => {
      seen.push({ attempt: ctx.attempt, deliveryCount: ctx.deliveryCount });
      if (down-- > 0) throw new DependencyError('payments API: 503', { dependency: 'payments-api' });
    });
    await b.start();
    await b.send('billing', Charge, { n: 1 });
    const billingHealth = () => b.health().endpoints.billing;
    await waitFor(() => billingHealth()?.counters.completed === 1);
    // Retry policy "none": one handler failure would have dead-lettered it. Four dependency
    // failures cost no attempt: the fifth delivery is still attempt 1.
    expect(seen.map((s) => s.attempt)).toEqual([1, 1, 1, 1, 1]);
    expect(seen.map((s) => s.deliveryCount)).toEqual([1, 2, 3, 4, 5]);
    expect(await b.deadLetters('billing').count()).toBe(0);
    expect(billingHealth()?.counters).toMatchObject({
      completed: 1,
      deadLettered: 0,
      retried: 0,
      released: 4,
      dependencyFailures: 4,
    });
  });

  it('releases with a growing delay, counting the failures in a header and leaving the attempt count alone', async () => {
    const b = billing({ ...quick, dependencyBackoffMs: { initial: 40, factor: 2, max: 1_000 } }, async () => {
      throw new DependencyError('down');
    });
    await b.start();
    await b.send('billing', Charge, { n: 1 });
    const queue = broker.queue('billing');
    await waitFor(() => (b.health().endpoints.billing?.counters.dependencyFailures ?? 0) >= 2);
    await b.stop();
    await waitFor(() => queue.readyCount === 1, { what: 'the delayed release to come back' });
    const delivery = await takeOne('billing');
    expect(Number(delivery.headers[SluiceHeader.dependencyFailures])).toBeGreaterThanOrEqual(2);
    expect(delivery.headers[SluiceHeader.attempts]).toBeUndefined();

    // initial × factor^(n − 1), capped, drawn from [d/2, d].
    const backoff = { initial: 1_000, factor: 2, max: 60_000 };
    expect(dependencyDelayMs(1, backoff, () => 0)).toBe(1_000);
    expect(dependencyDelayMs(3, backoff, () => 0)).toBe(4_000);
    expect(dependencyDelayMs(30, backoff, () => 0)).toBe(60_000);
    expect(dependencyDelayMs(3, backoff, () => 1)).toBe(2_000);
  });

  it('keeps the attempts a message already spent, and spends none for the dependency', async () => {
    const attempts: number[] = [];
    const b = billing({ ...quick, retry: { kind: 'immediate', retries: 5 } }, async (_m, ctx) => {
      attempts.push(ctx.attempt);
      if (ctx.attempt === 1) throw new Error('flaky');
      if (ctx.attempt === 2 && ctx.deliveryCount === 1) throw new DependencyError('database failover');
    });
    await b.start();
    await b.send('billing', Charge, { n: 1 });
    await waitFor(() => b.health().endpoints.billing?.counters.completed === 1);
    // Attempt 1 failed (spent), attempt 2 met the dependency failure (not spent): it runs again as attempt 2.
    expect(attempts).toEqual([1, 2, 2]);
  });

  it('counts a broker that cannot take a publish as a dependency failure, and a message it can never take as the handler’s', async () => {
    const Follow = defineMessage('billing.follow-up.v1', z.object({}));
    const seen: number[] = [];
    let refused = 2;
    const b = billing({ ...quick, retry: { kind: 'none' } }, async (_m, ctx) => {
      seen.push(ctx.attempt);
      // What a transport throws when the broker is down while the handler publishes straight to it.
      if (refused-- > 0) throw new TransportError('cannot publish: the connection is closed', { retryable: true });
      await ctx.publish(Follow, {});
    });
    await b.start();
    await b.send('billing', Charge, { n: 1 });
    await waitFor(() => b.health().endpoints.billing?.counters.completed === 1);
    expect(seen).toEqual([1, 1, 1]);
    expect(await b.deadLetters('billing').count()).toBe(0);
    await b.stop();

    const c = billing({ ...quick, retry: { kind: 'none' } }, async () => {
      throw new TransportError('message id over the broker limit', { retryable: false });
    });
    await c.start();
    await c.send('billing', Charge, { n: 2 });
    await waitFor(() => c.health().endpoints.billing?.counters.deadLettered === 1);
  });

  it('finds a DependencyError in the cause chain of what the handler threw', async () => {
    let down = true;
    const b = billing({ ...quick, retry: { kind: 'none' } }, async () => {
      if (down) {
        down = false;
        throw new Error('charging failed', { cause: new DependencyError('ledger service timed out') });
      }
    });
    await b.start();
    await b.send('billing', Charge, { n: 1 });
    await waitFor(() => b.health().endpoints.billing?.counters.completed === 1);
    expect(b.health().endpoints.billing?.counters).toMatchObject({ deadLettered: 0, dependencyFailures: 1 });
  });

  it('marks error types as dependency failures per endpoint and per handler', async () => {
    const b = bus();
    let endpointLevel = true;
    let handlerLevel = true;
    b.endpoint('billing', { ...quick, retry: { kind: 'none' }, dependencyErrors: [PaymentsUnavailable] }).handle(
      Charge,
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
    await b.start();
    for (const n of [1, 2, 3]) await b.send('billing', Charge, { n });
    await waitFor(() => {
      const c = b.health().endpoints.billing?.counters;
      return c?.completed === 2 && c.deadLettered === 1;
    });
    expect(b.health().endpoints.billing?.counters.dependencyFailures).toBe(2);
    const [dead] = await b.deadLetters('billing').peek();
    expect(dead?.fault?.errorMessage).toBe('declined: not a dependency');
  });

  it('never shows ctx.deadLetter() or ctx.retryLater() to the dependency matchers', async () => {
    const b = billing(
      { ...quick, dependencyErrors: [(e) => (e as Error).message.includes('unavailable')] },
      async (_m, ctx) => ctx.deadLetter('customer blocked'),
    );
    await b.start();
    await b.send('billing', Charge, { n: 1 });
    const dlq = b.deadLetters('billing');
    await waitFor(async () => (await dlq.count()) === 1);
    expect((await dlq.peek())[0]?.fault?.reason).toBe('handler-dead-lettered');
  });

  it('trips the kill switch after dependencyFailures in a row, naming what failed, and dead-letters nothing', async () => {
    const b = billing(
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
    b.on('killswitch.tripped', (e) => {
      trips.push(e.reason);
    });
    await b.start();
    for (let n = 0; n < 50; n++) await b.send('billing', Charge, { n });
    await waitFor(() => b.killSwitch('billing').state === 'tripped');
    await waitFor(() => b.health().endpoints.billing?.inFlight === 0);
    expect(trips).toEqual(['3 consecutive dependency failures (inbox (postgres))']);
    expect(await b.deadLetters('billing').count()).toBe(0);
    expect(b.killSwitch('billing').view()).toMatchObject({
      state: 'tripped',
      consecutiveDependencyFailures: 3,
      lastFailure: {
        reason: 'dependency',
        description: 'inbox (postgres) failed: DependencyError: connect ECONNREFUSED 10.0.0.5:5432',
      },
    });
    const queue = broker.queue('billing');
    await waitFor(() => queue.readyCount === 50, { what: 'every message back on the queue' });
  });
});
