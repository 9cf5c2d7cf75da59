import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  type BusConfigInput,
  type Clock,
  createBus,
  createMemoryBroker,
  defineMessage,
  type KillSwitchChange,
  ManualClock,
  type MemoryBroker,
  memoryTransport,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';

const Entry = defineMessage('ledger.entry.v1', z.object({ n: z.number().int(), fail: z.boolean().default(false) }));
const silent = pino({ level: 'silent' });

describe('kill switch on the memory transport', () => {
  const buses: Bus[] = [];
  let broker: MemoryBroker;
  const bus = (config: BusConfigInput = {}, clock?: Clock) => {
    const b = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 }, ...config },
      { transports: [memoryTransport({ broker })], logger: silent, ...(clock ? { clock } : {}) },
    );
    buses.push(b);
    return b;
  };
  /** Puts messages on the queue before the consumer starts, through a second bus on the same broker. */
  const enqueue = async (count: number, fail: (n: number) => boolean = () => false) => {
    const producer = bus();
    await producer.start();
    for (let n = 0; n < count; n++) await producer.send('ledger', Entry, { n, fail: fail(n) }, { id: `entry-${n}` });
  };
  const changes = (b: Bus) => {
    const seen: { name: string; change: KillSwitchChange }[] = [];
    for (const name of ['killswitch.tripped', 'killswitch.probing', 'killswitch.closed', 'killswitch.reset'] as const) {
      b.on(name, (change) => {
        seen.push({ name, change });
      });
    }
    return seen;
  };
  const deadNumbers = async (b: Bus) =>
    (await b.deadLetters('ledger').peek(100_000)).map((d) => JSON.parse(d.body.toString()).data.n as number);

  beforeEach(() => {
    broker = createMemoryBroker();
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
  });

  it('stops a database outage at the trip threshold with 10,000 queued, then handles every other message', async () => {
    const total = 10_000;
    const threshold = 10;
    const clock = new ManualClock();
    let databaseUp = false;
    const handled = new Set<number>();
    await enqueue(total);

    const consumer = bus({}, clock);
    consumer
      .endpoint('ledger', {
        concurrency: 8,
        retry: { kind: 'immediate', retries: 2 },
        killSwitch: { consecutiveFailures: threshold, restartDelayMs: { initial: 5_000, factor: 2, max: 60_000 } },
      })
      .handle(Entry, async (message) => {
        if (!databaseUp) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
        handled.add(message.n);
      });
    const seen = changes(consumer);
    await consumer.start();

    const ledger = () => consumer.health().endpoints.ledger;
    await waitFor(() => ledger()?.killSwitch.state === 'tripped' && ledger()?.inFlight === 0, { what: 'the trip' });
    const dead = await consumer.deadLetters('ledger').count();
    const queue = broker.queue('ledger');
    expect(dead).toBeGreaterThan(0);
    expect(dead).toBeLessThanOrEqual(threshold);
    // The rest stay on the broker, unlocked and ready; the consumer is paused.
    expect(queue.readyCount + dead).toBe(total);
    expect(queue.lockedCount).toBe(0);
    expect(handled.size).toBe(0);
    expect(ledger()?.killSwitch).toMatchObject({
      state: 'tripped',
      manual: false,
      reason: `${threshold} consecutive failures`,
      lastFailure: { reason: 'retries-exhausted', errorName: 'Error' },
    });
    const received = ledger()?.counters.received;

    databaseUp = true;
    clock.advance(5_000);
    await waitFor(() => handled.size + dead === total, { timeoutMs: 30_000, what: 'every message handled' });
    await waitFor(() => queue.readyCount === 0 && ledger()?.inFlight === 0);

    expect(ledger()?.killSwitch.state).toBe('closed');
    expect(received).toBeLessThan(total);
    expect(await consumer.deadLetters('ledger').count()).toBe(dead);
    const deadSet = new Set(await deadNumbers(consumer));
    for (let n = 0; n < total; n++) expect(handled.has(n) !== deadSet.has(n), `message ${n}`).toBe(true);
    expect(seen.map((s) => s.name)).toEqual(['killswitch.tripped', 'killswitch.probing', 'killswitch.closed']);
    expect(seen[0]?.change).toMatchObject({ endpoint: 'ledger', from: 'closed', to: 'tripped', consecutiveTrips: 1 });
  });

  it('releases in-flight messages that fail after a trip instead of dead-lettering them', async () => {
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let started = 0;
    await enqueue(20);
    const consumer = bus();
    consumer.endpoint('ledger', { concurrency: 4, retry: { kind: 'none' } }).handle(Entry, async () => {
      started++;
      await gate;
      throw new Error('database down');
    });
    await consumer.start();
    await waitFor(() => started === 4);
    consumer.killSwitch('ledger').trip('database failover');
    open();
    const ledger = () => consumer.health().endpoints.ledger;
    await waitFor(() => ledger()?.inFlight === 0);
    expect(await consumer.deadLetters('ledger').count()).toBe(0);
    expect(broker.queue('ledger').readyCount).toBe(20);
    expect(ledger()?.counters.deadLettered).toBe(0);
    expect(ledger()?.killSwitch).toMatchObject({ state: 'tripped', manual: true, reason: 'database failover' });
    expect(ledger()?.killSwitch.released).toBeGreaterThanOrEqual(4);
  });

  describe('failure-rate rule', () => {
    const rateEndpoint = (consumer: Bus, threshold: number) =>
      consumer
        .endpoint('ledger', {
          retry: { kind: 'none' },
          killSwitch: {
            consecutiveFailures: false,
            failureRate: { threshold, windowMs: 60_000, minimumMessages: 20 },
          },
        })
        .handle(Entry, async (message) => {
          if (message.fail) throw new Error('timeout talking to the pricing service');
        });

    it('trips once the window has seen the minimum and the rate reaches the threshold', async () => {
      // Three failures in five: 60 %.
      await enqueue(100, (n) => [0, 1, 3].includes(n % 5));
      const consumer = bus();
      rateEndpoint(consumer, 0.5);
      await consumer.start();
      const ledger = () => consumer.health().endpoints.ledger;
      await waitFor(() => ledger()?.killSwitch.state === 'tripped' && ledger()?.inFlight === 0);
      // Messages 0..19 give 12 failures in 20 without a trip (19 seen at the 12th); message 20 fails: 13 of 21.
      expect(ledger()?.killSwitch.reason).toBe('failure rate 61.9% reached 50%: 13 of 21 messages in 60000 ms');
      expect(ledger()?.counters.completed).toBe(8);
      expect(await consumer.deadLetters('ledger').count()).toBe(13);
      expect(broker.queue('ledger').readyCount).toBe(79);
    });

    it('does not trip below the threshold', async () => {
      // One failure in five: 20 %.
      await enqueue(100, (n) => n % 5 === 0);
      const consumer = bus();
      rateEndpoint(consumer, 0.5);
      await consumer.start();
      const ledger = () => consumer.health().endpoints.ledger;
      await waitFor(() => (ledger()?.counters.completed ?? 0) + (ledger()?.counters.deadLettered ?? 0) === 100);
      expect(ledger()?.killSwitch).toMatchObject({
        state: 'closed',
        trips: 0,
        window: { messages: 100, failures: 20 },
      });
    });
  });

  it('backs off between failed probes, dead-letters none of them, and closes once the cause is gone', async () => {
    let databaseUp = false;
    await enqueue(200);
    const consumer = bus();
    consumer
      .endpoint('ledger', {
        retry: { kind: 'none' },
        killSwitch: { consecutiveFailures: 3, restartDelayMs: { initial: 20, factor: 2, max: 80 } },
      })
      .handle(Entry, async () => {
        if (!databaseUp) throw new Error('database down');
      });
    const seen = changes(consumer);
    await consumer.start();
    const trips = () => seen.filter((s) => s.name === 'killswitch.tripped').map((s) => s.change);
    const probes = () => seen.filter((s) => s.name === 'killswitch.probing').map((s) => s.change);
    await waitFor(() => trips().length === 5, { what: 'five trips' });
    databaseUp = true;
    await waitFor(() => seen.at(-1)?.name === 'killswitch.closed', { what: 'closed' });

    const delays = trips().map((t) => Date.parse(t.restartAt ?? '') - Date.parse(t.at));
    expect(delays).toEqual([20, 40, 80, 80, 80]);
    expect(trips().map((t) => t.consecutiveTrips)).toEqual([1, 2, 3, 4, 5]);
    expect(
      trips()
        .slice(1)
        .every((t) => t.reason === 'probe failed'),
    ).toBe(true);
    // Each probe started no sooner than its trip's restart time.
    for (const [i, probe] of probes().entries()) {
      expect(Date.parse(probe.at)).toBeGreaterThanOrEqual(Date.parse(trips()[i]?.restartAt ?? ''));
    }
    // The 3 failures that tripped it; the 4 failed probes went back to the queue (one outage, one budget).
    expect(await consumer.deadLetters('ledger').count()).toBe(3);
    await waitFor(() => consumer.health().endpoints.ledger?.counters.completed === 200 - 3);
    expect(consumer.health().endpoints.ledger?.killSwitch).toMatchObject({ state: 'closed', consecutiveTrips: 0 });
  });

  it('counts bad input only when asked to', async () => {
    const garbage = async (b: Bus, count: number) => {
      for (let i = 0; i < count; i++) {
        await b.transport.send('ledger', {
          messageId: `garbage-${i}`,
          body: Buffer.from('{"not": "an envelope"'),
          headers: {},
          contentType: 'application/cloudevents+json',
          key: undefined,
          messageType: '',
        });
      }
    };
    const make = (countBadInput: boolean) => {
      const b = bus();
      b.endpoint('ledger', { killSwitch: { consecutiveFailures: 3, countBadInput } }).handle(Entry, async () => {});
      return b;
    };
    const lenient = make(false);
    await lenient.start();
    await garbage(lenient, 5);
    await waitFor(() => lenient.health().endpoints.ledger?.counters.deadLettered === 5);
    expect(lenient.killSwitch('ledger').state).toBe('closed');
    await lenient.stop();

    broker = createMemoryBroker();
    const strict = make(true);
    await strict.start();
    await garbage(strict, 5);
    await waitFor(() => strict.killSwitch('ledger').state === 'tripped');
    await waitFor(() => strict.health().endpoints.ledger?.inFlight === 0);
    expect(await strict.deadLetters('ledger').count()).toBe(3);
    expect(strict.health().endpoints.ledger?.killSwitch.lastFailure?.reason).toBe('undecodable');
  });
});
