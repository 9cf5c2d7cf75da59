import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineMessage } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { trackedRabbitmq, unique } from './rabbitmq-test-kit.js';

for (const queueType of ['quorum', 'classic'] as const) {
  const rabbit = trackedRabbitmq({ queueType });

  describe(`rabbitmq delayed redelivery (${queueType})`, () => {
    afterAll(() => rabbit.cleanup());

    it('redelivers through the delay queue no sooner than each delay, counting every delivery', async () => {
      const Job = defineMessage(`delay.${unique('job')}.v1`, z.object({ n: z.number() }));
      const bus = createBus(
        { service: 'delay-test', transport: rabbit.config, shutdown: { signals: [], timeoutMs: 5_000 } },
        { transports: [rabbit.definition], logger: pino({ level: 'silent' }) },
      );
      const endpoint = unique('delay-jobs');
      const delaysMs = [300, 700, 1200];
      const attempts: { at: number; attempt: number; deliveryCount: number }[] = [];
      bus
        .endpoint(endpoint, { inProcessRetryMaxDelayMs: 0, retry: { kind: 'intervals', delaysMs } })
        .handle(Job, async (_job, ctx) => {
          attempts.push({ at: performance.now(), attempt: ctx.attempt, deliveryCount: ctx.deliveryCount });
          if (attempts.length <= delaysMs.length) throw new Error('not yet');
        });
      await bus.start();
      try {
        await bus.send(endpoint, Job, { n: 1 });
        await waitFor(() => attempts.length === 4, { timeoutMs: 15_000, what: 'four attempts' });
        expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4]);
        expect(attempts.map((a) => a.deliveryCount)).toEqual([1, 2, 3, 4]);
        for (let i = 0; i < delaysMs.length; i++) {
          const waited = (attempts[i + 1]?.at ?? 0) - (attempts[i]?.at ?? 0);
          expect(waited).toBeGreaterThanOrEqual(delaysMs[i] ?? 0);
        }
        await waitFor(() => bus.health().endpoints[endpoint]?.counters.completed === 1, { what: 'completed' });
        expect(bus.health().endpoints[endpoint]?.counters.retried).toBe(3);
      } finally {
        await bus.stop();
      }
    });
  });
}
