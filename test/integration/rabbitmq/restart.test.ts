// Restarts a RabbitMQ broker under load: every connection on it drops. The broker is a private node
// of this file (test/infra/rabbitmq/private-rabbitmq.ts), never the shared one on 5672 that other
// test files and test runs use at the same time.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, defineMessage } from '../../../src/index.js';
import { rabbitmqTransport } from '../../../transports/rabbitmq/index.js';
import { type PrivateRabbitmq, startPrivateRabbitmq } from '../../infra/rabbitmq/private-rabbitmq.js';
import { waitFor } from '../../support/wait-for.js';
import { unique } from './rabbitmq-test-kit.js';

const TOTAL = 10_000;
const silent = pino({ level: 'silent' });

describe('rabbitmq broker restart', () => {
  let broker: PrivateRabbitmq;
  const buses: Bus[] = [];
  const bus = (queueType: 'quorum' | 'classic') => {
    const b = createBus(
      {
        service: 'restart-test',
        transport: {
          kind: 'rabbitmq',
          url: broker.url,
          queueType,
          reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
          publishTimeoutMs: 120_000,
        },
        shutdown: { signals: [], timeoutMs: 5_000 },
      },
      { transports: [rabbitmqTransport()], logger: silent },
    );
    buses.push(b);
    return b;
  };

  /** Restarts the broker's application and waits until `buses` are connected again. */
  async function restart(reconnecting: Bus[]): Promise<void> {
    await broker.stopApp();
    await waitFor(() => reconnecting.every((b) => b.health().transport.state === 'reconnecting'), {
      timeoutMs: 30_000,
      what: 'reconnecting',
    });
    await broker.startApp();
    await waitFor(() => reconnecting.every((b) => b.health().transport.state === 'connected'), {
      timeoutMs: 60_000,
      what: 'reconnected',
    });
  }

  beforeAll(async () => {
    broker = await startPrivateRabbitmq();
  }, 180_000);
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.stop()));
    await broker?.remove();
  }, 60_000);

  for (const queueType of ['quorum', 'classic'] as const) {
    it(`handles every one of 10,000 messages across a broker restart, losing none (${queueType})`, async () => {
      const Item = defineMessage(`restart.${unique('item')}.v1`, z.object({ n: z.number() }));
      const b = bus(queueType);
      const endpoint = unique('restart');
      const handled = new Set<number>();
      let handledTotal = 0;
      b.endpoint(endpoint, { concurrency: 8, prefetch: 50 }).handle(Item, async ({ n }) => {
        // Slow enough that the restart lands in the middle of the run.
        await new Promise((resolve) => setImmediate(resolve));
        handled.add(n);
        handledTotal++;
      });
      await b.start();
      try {
        // Half before, half while the broker goes away and comes back: sends wait, none is dropped.
        for (let n = 0; n < TOTAL / 2; n++) await b.send(endpoint, Item, { n });
        await waitFor(() => handled.size >= 1_000, { timeoutMs: 60_000, what: '1,000 handled before the restart' });
        const sendingRest = (async () => {
          for (let n = TOTAL / 2; n < TOTAL; n++) await b.send(endpoint, Item, { n });
        })();
        await restart([b]);
        await sendingRest;
        await waitFor(() => handled.size === TOTAL, {
          timeoutMs: 120_000,
          intervalMs: 50,
          what: `all ${TOTAL} handled`,
        });
        const missing = Array.from({ length: TOTAL }, (_, n) => n).filter((n) => !handled.has(n));
        expect(missing).toEqual([]);
        // Redeliveries after the restart may run a handler twice (at-least-once); never zero times.
        expect(handledTotal).toBeGreaterThanOrEqual(TOTAL);
      } finally {
        await b.stop();
      }
    }, 300_000);
  }

  it('publishes waiting through a restart share one exchange declaration on the new connection', async () => {
    // The publisher has no endpoint for the type, so its reconnection does not declare the
    // exchange. Before: each of the waiting publishes opened a channel of its own to declare it
    // when the connection came back; past ~2,000 the connection had no channel left and they failed.
    const Event = defineMessage(`restart.${unique('event')}.v1`, z.object({ n: z.number() }));
    const WAITING = 5_000;
    const publisher = bus('quorum');
    const subscriber = bus('quorum');
    const endpoint = unique('restart-sub');
    const seen = new Set<number>();
    subscriber.endpoint(endpoint, { concurrency: 16, prefetch: 200 }).handle(Event, async ({ n }) => {
      seen.add(n);
    });
    await subscriber.start();
    await publisher.start();
    await publisher.publish(Event, { n: -1 });

    await broker.stopApp();
    await waitFor(() => publisher.health().transport.state === 'reconnecting', {
      timeoutMs: 30_000,
      what: 'publisher reconnecting',
    });
    // Issued while the broker is down: every one waits for the connection.
    const publishing = Promise.allSettled(Array.from({ length: WAITING }, (_, n) => publisher.publish(Event, { n })));
    await broker.startApp();
    const results = await publishing;
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failed.map((f) => String(f.reason)).slice(0, 3)).toEqual([]);
    await waitFor(() => seen.size === WAITING + 1, {
      timeoutMs: 120_000,
      intervalMs: 50,
      what: () => `all ${WAITING + 1} publishes handled (have ${seen.size})`,
    });
  }, 300_000);
});
