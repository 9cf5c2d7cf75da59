import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  createBus,
  createMemoryBroker,
  defineMessage,
  memoryInbox,
  memoryTransport,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';

/**
 * Through `createBus` on the memory transport (real clock): a bad-input dead letter decided after the
 * kill switch's gate (the ordering guard's `future-timestamp`) is shown to the switch once, by the
 * gate, and not a second time by the gate's outer check, which shows the switch the bad input
 * decided before admission. Counted twice, one such message tripped a switch set to trip on two.
 */
const Reading = defineMessage('meter.reading.v1', z.object({ value: z.number() }));
const silent = pino({ level: 'silent' });

describe('kill switch: one bad-input dead letter is one failure', () => {
  const buses: Bus<unknown>[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
  });

  it('counts a future-timestamp dead letter once with countBadInput', async () => {
    const broker = createMemoryBroker();
    const bus = createBus(
      {
        shutdown: { signals: [], timeoutMs: 2_000 },
        inbox: { kind: 'memory' },
        endpoints: {
          meters: {
            ordering: { enabled: true, futureSkewMs: 60_000, futurePolicy: 'reject' },
            killSwitch: { countBadInput: true, consecutiveFailures: 2 },
          },
        },
      },
      { transports: [memoryTransport({ broker })], inbox: memoryInbox(), logger: silent },
    );
    buses.push(bus);
    bus.endpoint('meters').handle(Reading, async () => {});
    await bus.start();
    const future = () => new Date(Date.now() + 10 * 60_000).toISOString();

    await bus.send('meters', Reading, { value: 1 }, { key: 'm-1', occurredAt: future() });
    await waitFor(() => bus.health().endpoints.meters?.counters.deadLettered === 1);
    await waitFor(() => bus.health().endpoints.meters?.inFlight === 0);
    expect((await bus.deadLetters('meters').peek(10)).map((d) => d.fault?.reason)).toEqual(['future-timestamp']);
    expect(bus.killSwitch('meters').view()).toMatchObject({ state: 'closed', consecutiveFailures: 1 });

    await bus.send('meters', Reading, { value: 2 }, { key: 'm-2', occurredAt: future() });
    await waitFor(() => bus.killSwitch('meters').state === 'tripped');
    expect(bus.killSwitch('meters').view().consecutiveFailures).toBe(2);
  });
});
