import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessage, memoryInbox } from '../../src/index.js';
import { createTestHarness, type TestHarnessOptions } from '../../src/testing/index.js';

/**
 * Every fault record takes its time from the bus's clock, wherever it is made: bad input (decode,
 * validate), the handler's own dead letter, the ordering guard (future timestamp, stale, tombstone
 * without a handler) and the endpoint's last resort for a pipeline that keeps failing. On the
 * harness's virtual clock, far from the real time, a fault stamped with `new Date()` would show.
 */
const Reading = defineMessage('meter.reading.v1', z.object({ value: z.number() }));
const START = Date.parse('2031-06-01T00:00:00Z');
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

describe('fault records on the injected clock', () => {
  const harnesses: { stop(): Promise<void> }[] = [];
  const harness = <TTx = undefined>(options: TestHarnessOptions<TTx> = {}) => {
    const h = createTestHarness<TTx>({ startAt: START, ...options });
    harnesses.push(h);
    return h;
  };
  afterEach(async () => {
    await Promise.all(harnesses.splice(0).map((h) => h.stop()));
  });

  it('stamps bad input and a handler dead letter with the clock', async () => {
    const h = harness();
    h.bus.endpoint('meters').handle(Reading, async (reading, ctx) => {
      if (reading.value < 0) ctx.deadLetter('negative reading');
    });
    await h.start();
    h.clock?.advance(5 * HOUR);
    await h.sendRaw('meters', 'not json');
    await h.sendRaw('meters', {
      specversion: '1.0',
      id: 'bad-1',
      source: 'legacy',
      type: Reading.type,
      time: iso(START),
      data: { value: 'high' },
    });
    await h.send('meters', Reading, { value: -1 });
    await h.settled();
    const faults = h.deadLettered().map((d) => d.fault);
    expect(faults.map((f) => f.reason).sort()).toEqual(['handler-dead-lettered', 'schema-violation', 'undecodable']);
    for (const fault of faults) {
      expect(fault.lastFailureAt).toBe(iso(START + 5 * HOUR));
      expect(fault.firstFailureAt).toBe(iso(START + 5 * HOUR));
    }
  });

  it('stamps the ordering guard’s dead letters with the clock', async () => {
    const h = harness({
      inbox: memoryInbox(),
      config: {
        endpoints: {
          meters: {
            ordering: {
              enabled: true,
              futureSkewMs: 60_000,
              futurePolicy: 'reject',
              stalePolicy: 'deadLetter',
              tombstones: { unhandled: 'deadLetter' },
            },
          },
        },
      },
    });
    h.bus.endpoint('meters').handle(Reading, async () => {});
    await h.start();
    h.clock?.advance(2 * HOUR);
    const now = START + 2 * HOUR;
    await h.send('meters', Reading, { value: 1 }, { key: 'future', occurredAt: iso(now + HOUR) });
    await h.send('meters', Reading, { value: 2 }, { key: 'k', occurredAt: iso(now - 1_000) });
    await h.settled();
    await h.send('meters', Reading, { value: 3 }, { key: 'k', occurredAt: iso(now - 2_000) });
    await h.send('meters', Reading, { value: 0 }, { key: 'gone', tombstone: true, occurredAt: iso(now - 1_000) });
    await h.settled();
    const faults = h.deadLettered().map((d) => d.fault);
    expect(faults.map((f) => f.reason).sort()).toEqual(['future-timestamp', 'stale', 'tombstoned']);
    for (const fault of faults) expect(fault.lastFailureAt).toBe(iso(now));
  });

  it('stamps the dead letter of a pipeline that keeps failing with the clock', async () => {
    const h = harness();
    h.bus
      .endpoint('meters', {
        partitionKey: () => {
          throw new Error('a bug in the partition key function');
        },
      })
      .handle(Reading, async () => {});
    await h.start();
    await h.send('meters', Reading, { value: 1 }, { key: 'k' });
    await h.settled();
    const [dead] = h.deadLettered();
    expect(dead?.fault.reason).toBe('permanent-failure');
    // Released after each failure, 1 s apart on the clock, dead-lettered on the fifth delivery.
    const at = h.clock?.now() ?? 0;
    expect(at).toBeGreaterThan(START);
    expect(dead?.fault.lastFailureAt).toBe(iso(at));
  });
});
