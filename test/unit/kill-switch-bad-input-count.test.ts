import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessage, memoryInbox } from '../../src/index.js';
import { createTestHarness } from '../../src/testing/index.js';

/**
 * With `countBadInput`, bad input counts once as a kill-switch failure — also bad input that the
 * ordering guard decides after the gate (`future-timestamp`), whose outcome passes both the gate and
 * the gate's outer check on its way back (it was counted twice: one such dead letter counted as two
 * consecutive failures).
 */
const Reading = defineMessage('meter.reading.v1', z.object({ value: z.number() }));
const START = Date.parse('2030-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('kill switch: bad input counted once', () => {
  const harnesses: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(harnesses.splice(0).map((h) => h.stop()));
  });

  it('counts a future-timestamp dead letter as one failure, not two', async () => {
    const h = createTestHarness({
      startAt: START,
      inbox: memoryInbox(),
      config: {
        endpoints: {
          meters: {
            ordering: { enabled: true, futureSkewMs: 60_000, futurePolicy: 'reject' },
            killSwitch: { countBadInput: true, consecutiveFailures: 2 },
          },
        },
      },
    });
    harnesses.push(h);
    h.bus.endpoint('meters').handle(Reading, async () => {});
    await h.start();
    await h.send('meters', Reading, { value: 1 }, { key: 'm-1', occurredAt: iso(START + 10 * 60_000) });
    await h.settled();
    expect(h.deadLettered(Reading).map((d) => d.fault.reason)).toEqual(['future-timestamp']);
    // One failure of two: still closed.
    expect(h.bus.killSwitch('meters').state).toBe('closed');
    // A second one makes two in a row: tripped.
    await h.send('meters', Reading, { value: 2 }, { key: 'm-2', occurredAt: iso(START + 10 * 60_000) });
    await h.settled();
    expect(h.bus.killSwitch('meters').state).toBe('tripped');
  });

  it('counts bad input decided before the gate (a body that is not JSON) once as well', async () => {
    const h = createTestHarness({
      startAt: START,
      config: { endpoints: { meters: { killSwitch: { countBadInput: true, consecutiveFailures: 2 } } } },
    });
    harnesses.push(h);
    h.bus.endpoint('meters').handle(Reading, async () => {});
    await h.start();
    const garbage = { messageId: 'g-1', body: Buffer.from('not json'), headers: {}, key: undefined, deliveryCount: 0 };
    h.broker.queue('meters').enqueue(garbage);
    await h.settled();
    expect(h.deadLettered().map((d) => d.fault.reason)).toEqual(['undecodable']);
    expect(h.bus.killSwitch('meters').state).toBe('closed');
  });
});
