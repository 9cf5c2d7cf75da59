import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, DependencyError, defineMessage, PermanentError } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { trackedRabbitmq, unique } from '../rabbitmq/rabbitmq-test-kit.js';

/**
 * A poison message arriving while the endpoint recovers from an outage, over a real broker (the
 * virtual-time cases are in test/unit/kill-switch-recovering-poison.test.ts). Before: its first
 * failure tripped the switch again and it was released untouched; it came back fresh, tripped the
 * switch after the next probe, with a doubled wait each time, and never reached the dead-letter queue
 * (here: eight trips in 30 s, the poison still on the queue).
 */
const rabbit = trackedRabbitmq({ queueType: 'quorum' });

describe('rabbitmq: a poison message while the kill switch recovers', () => {
  afterAll(() => rabbit.cleanup());

  it('costs at most one extra trip; the poison is dead-lettered and the rest consumed', async () => {
    const Entry = defineMessage(`recovering.${unique('entry')}.v1`, z.object({ id: z.string() }));
    const bus = createBus(
      { service: 'recovering-test', transport: rabbit.config, shutdown: { signals: [], timeoutMs: 5_000 } },
      { transports: [rabbit.definition], logger: pino({ level: 'silent' }) },
    );
    const endpoint = unique('recovering');
    let downstreamUp = false;
    const consumed = new Set<string>();
    bus
      .endpoint(endpoint, {
        concurrency: 1,
        prefetch: 1,
        retry: { kind: 'none' },
        dependencyBackoffMs: { initial: 100, factor: 2, max: 1_000 },
        killSwitch: {
          consecutiveFailures: 10,
          dependencyFailures: 2,
          restartDelayMs: { initial: 500, factor: 2, max: 8_000 },
        },
      })
      .handle(Entry, async ({ id }) => {
        if (id === 'poison') throw new PermanentError(`${id} breaks a business rule`);
        if (!downstreamUp) throw new DependencyError('ledger API: 503', { dependency: 'ledger-api' });
        consumed.add(id);
      });
    const trips: string[] = [];
    bus.on('killswitch.tripped', (change) => {
      trips.push(change.reason);
    });
    await bus.start();
    try {
      // The outage: two dependency failures trip the switch; the downstream is back right after.
      await bus.send(endpoint, Entry, { id: 'outage-0' });
      await bus.send(endpoint, Entry, { id: 'outage-1' });
      await waitFor(() => trips.length === 1, { timeoutMs: 15_000, what: 'the outage to trip the switch' });
      downstreamUp = true;
      // Sent while tripped: the probe closes the switch (recovering), then the poison arrives; then
      // steady traffic, a message every 100 ms, so that the poison is back while it recovers.
      for (const id of ['probe', 'poison']) await bus.send(endpoint, Entry, { id });
      for (let n = 0; n < 20; n++) {
        await bus.send(endpoint, Entry, { id: `healthy-${n}` });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }

      const dlq = bus.deadLetters(endpoint);
      await waitFor(async () => (await dlq.count()) >= 1 && consumed.size === 23, {
        timeoutMs: 30_000,
        intervalMs: 50,
        what: () => `the poison dead-lettered and 23 consumed (have ${consumed.size}); trips: ${trips.join(' | ')}`,
      });
      const dead = await dlq.peek(10);
      expect(dead.map((d) => d.fault?.reason)).toEqual(['permanent-failure']);
      expect(trips.length).toBeLessThanOrEqual(2);
      await waitFor(() => bus.killSwitch(endpoint).view().recovering === undefined, {
        timeoutMs: 15_000,
        what: 'the endpoint to recover',
      });
      expect(bus.killSwitch(endpoint).state).toBe('closed');
    } finally {
      await bus.stop();
    }
  }, 60_000);
});
