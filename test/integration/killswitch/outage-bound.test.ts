import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  type BusConfigInput,
  createBus,
  createMemoryBroker,
  defineMessage,
  type KillSwitchChange,
  type MemoryBroker,
  memoryTransport,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';

const Entry = defineMessage('ledger.entry.v1', z.object({ n: z.number().int(), poison: z.boolean().default(false) }));
const silent = pino({ level: 'silent' });

/**
 * The dead-letter budget of the kill switch (issue 19, items 8 and 9): an outage costs at most the
 * threshold, across probes, restarts and manual resets; a burst of poison at the end of a healthy
 * drain does not pause the endpoint.
 */
describe('kill switch: one dead-letter budget per outage', () => {
  const buses: Bus[] = [];
  let broker: MemoryBroker;
  const bus = (config: BusConfigInput = {}) => {
    const b = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 }, ...config },
      { transports: [memoryTransport({ broker })], logger: silent },
    );
    buses.push(b);
    return b;
  };
  const enqueue = async (count: number, poison: (n: number) => boolean = () => false) => {
    const producer = bus();
    await producer.start();
    for (let n = 0; n < count; n++) {
      await producer.send('ledger', Entry, { n, poison: poison(n) }, { id: `entry-${n}` });
    }
  };
  const trips = (b: Bus) => {
    const seen: KillSwitchChange[] = [];
    b.on('killswitch.tripped', (change) => {
      seen.push(change);
    });
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

  it('dead-letters at most the threshold of an outage the switch cannot classify, across probes and resets', async () => {
    const total = 300;
    const threshold = 5;
    let databaseUp = false;
    const handled = new Set<number>();
    await enqueue(total);
    const consumer = bus();
    consumer
      .endpoint('ledger', {
        concurrency: 4,
        retry: { kind: 'none' },
        killSwitch: { consecutiveFailures: threshold, restartDelayMs: { initial: 20, factor: 2, max: 80 } },
      })
      .handle(Entry, async (message) => {
        // Slow enough that several are in flight at every trip and reset.
        await new Promise((resolve) => setTimeout(resolve, 2));
        if (!databaseUp) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
        handled.add(message.n);
      });
    const seen = trips(consumer);
    await consumer.start();
    const ks = consumer.killSwitch('ledger');

    await waitFor(() => seen.length >= 1, { what: 'the first trip' });
    // Probes fail while the database is down (each one trips the switch again)...
    await waitFor(() => seen.filter((t) => t.reason === 'probe failed').length >= 3, { what: 'three failed probes' });
    // ... and an operator resets it three times, with failures still in flight each time.
    for (let reset = 1; reset <= 3; reset++) {
      const before = seen.length;
      ks.reset(`operator reset ${reset}`);
      await waitFor(() => seen.length > before, { what: `the trip after reset ${reset}` });
    }
    expect(await consumer.deadLetters('ledger').count()).toBeLessThanOrEqual(threshold);

    databaseUp = true;
    ks.reset('database is back');
    await waitFor(async () => handled.size + (await consumer.deadLetters('ledger').count()) === total, {
      timeoutMs: 30_000,
      what: 'every message handled or dead-lettered',
    });
    const dead = new Set(await deadNumbers(consumer));
    expect(dead.size).toBeLessThanOrEqual(threshold);
    for (let n = 0; n < total; n++) expect(handled.has(n) !== dead.has(n), `message ${n}`).toBe(true);
  });

  it('does not pause the endpoint for twenty poison messages at the end of a 10,000-message drain', async () => {
    const total = 10_000;
    // 1% poison: eighty spread through the backlog, and the last twenty.
    const poison = (n: number) => n >= total - 20 || n % 125 === 62;
    await enqueue(total, poison);
    const consumer = bus();
    consumer
      .endpoint('ledger', { concurrency: 8, retry: { kind: 'intervals', delaysMs: [5, 10, 20] } })
      .handle(Entry, async (message) => {
        if (message.poison) throw new TypeError(`cannot apply entry ${message.n}`);
      });
    const seen = trips(consumer);
    await consumer.start();
    const ledger = () => consumer.health().endpoints.ledger;
    await waitFor(() => (ledger()?.counters.completed ?? 0) + (ledger()?.counters.deadLettered ?? 0) === total, {
      timeoutMs: 60_000,
      what: 'the whole backlog',
    });
    expect(seen).toEqual([]);
    expect(ledger()?.counters).toMatchObject({ completed: total - 100, deadLettered: 100 });
    const dead = await deadNumbers(consumer);
    expect(dead.filter((n) => !poison(n))).toEqual([]);
  });

  it('still trips on an outage in the middle of a steady stream, once the failures outnumber the recent successes', async () => {
    const total = 2_000;
    const outageFrom = 1_000;
    await enqueue(total);
    const consumer = bus();
    let processed = 0;
    consumer
      .endpoint('ledger', {
        concurrency: 4,
        retry: { kind: 'none' },
        killSwitch: { restartDelayMs: { initial: 60_000, max: 60_000 } },
      })
      .handle(Entry, async () => {
        if (++processed > outageFrom) throw new Error('downstream unreachable');
      });
    const seen = trips(consumer);
    await consumer.start();
    const ledger = () => consumer.health().endpoints.ledger;
    await waitFor(() => seen.length === 1 && ledger()?.inFlight === 0, { what: 'the trip' });
    // Defaults: 10 in a row after a start, at most half of the last 50 outcomes after a healthy
    // stretch; plus the few messages that failed while the last successes were still completing
    // (failing while others succeed, they look like their own fault): fewer than the concurrency.
    const dead = await consumer.deadLetters('ledger').count();
    expect(dead).toBeGreaterThanOrEqual(10);
    expect(dead).toBeLessThanOrEqual(25 + 3);
    expect(seen[0]?.reason).toMatch(/^\d+ consecutive failures$/);
  });
});
