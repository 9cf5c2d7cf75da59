// Restarts the RabbitMQ application: every connection on the broker drops. Runs alone, never in
// parallel with other test files (see the `serial` project in vitest.config.ts).
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineMessage } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { rabbitmqctl, trackedRabbitmq, unique } from './rabbitmq-test-kit.js';

const TOTAL = 10_000;

for (const queueType of ['quorum', 'classic'] as const) {
  const rabbit = trackedRabbitmq({
    queueType,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
    publishTimeoutMs: 120_000,
  });

  describe(`rabbitmq broker restart (${queueType})`, () => {
    afterAll(() => rabbit.cleanup());

    it('handles every one of 10,000 messages across a broker restart, losing none', async () => {
      const Item = defineMessage(`restart.${unique('item')}.v1`, z.object({ n: z.number() }));
      const bus = createBus(
        { service: 'restart-test', transport: rabbit.config, shutdown: { signals: [], timeoutMs: 5_000 } },
        { transports: [rabbit.definition], logger: pino({ level: 'silent' }) },
      );
      const endpoint = unique('restart');
      const handled = new Set<number>();
      let handledTotal = 0;
      bus.endpoint(endpoint, { concurrency: 8, prefetch: 50 }).handle(Item, async ({ n }) => {
        // Slow enough that the restart lands in the middle of the run.
        await new Promise((resolve) => setImmediate(resolve));
        handled.add(n);
        handledTotal++;
      });
      await bus.start();
      try {
        // Half before, half while the broker goes away and comes back: sends wait, none is dropped.
        for (let n = 0; n < TOTAL / 2; n++) await bus.send(endpoint, Item, { n });
        await waitFor(() => handled.size >= 1_000, { timeoutMs: 60_000, what: '1,000 handled before the restart' });
        const sendingRest = (async () => {
          for (let n = TOTAL / 2; n < TOTAL; n++) await bus.send(endpoint, Item, { n });
        })();
        await rabbitmqctl('stop_app');
        await waitFor(() => bus.health().transport.state === 'reconnecting', {
          timeoutMs: 30_000,
          what: 'reconnecting',
        });
        await rabbitmqctl('start_app');
        await rabbitmqctl('await_startup');
        await waitFor(() => bus.health().transport.state === 'connected', { timeoutMs: 60_000, what: 'reconnected' });
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
        await bus.stop();
      }
    }, 300_000);
  });
}
