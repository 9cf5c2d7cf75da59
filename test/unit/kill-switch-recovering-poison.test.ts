import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DependencyError, defineMessage, PermanentError } from '../../src/index.js';
import { createTestHarness, type TestHarnessOptions } from '../../src/testing/index.js';

/**
 * A poison message that arrives while the endpoint is recovering from an outage (closed again after
 * an automatic trip, not yet trusted). Before: its first failure tripped the switch again and it was
 * released untouched (the failure not recorded on the message); it came back fresh as the next probe
 * or right after it and tripped the switch again, with a doubled wait each time: the endpoint
 * flapped, healthy traffic waited, and the poison never reached the dead-letter queue.
 */
const Entry = defineMessage('ledger.entry-posted.v1', z.object({ id: z.string() }));
const START = Date.parse('2030-01-01T00:00:00Z');
const MINUTE = 60_000;

describe('kill switch: a poison message while the endpoint recovers', () => {
  const harnesses: { stop(): Promise<void> }[] = [];
  const harness = (options: TestHarnessOptions = {}) => {
    const h = createTestHarness({ startAt: START, ...options });
    harnesses.push(h);
    return h;
  };
  afterEach(async () => {
    await Promise.all(harnesses.splice(0).map((h) => h.stop()));
  });

  /**
   * An outage trips the switch (a downstream the handler marks as a dependency is down: two
   * dependency failures, nothing dead-lettered); it is back when the switch probes; the probe closes
   * it (recovering: three successes needed). Poison and healthy messages sent meanwhile run while it
   * recovers, the poison first.
   */
  async function outageThenPoison(
    poison: (id: string) => Error,
    retry: Record<string, unknown>,
    { healthy = 6, settle = true } = {},
  ) {
    const h = harness({
      config: {
        endpoints: {
          ledger: {
            concurrency: 1,
            retry,
            dependencyBackoffMs: { initial: 1_000, factor: 2, max: 10_000 },
            killSwitch: {
              consecutiveFailures: 3,
              dependencyFailures: 2,
              restartDelayMs: { initial: MINUTE, factor: 2, max: 60 * MINUTE },
            },
          },
        },
      },
    });
    let databaseUp = false;
    h.bus.endpoint('ledger').handle(Entry, async ({ id }) => {
      if (id.startsWith('poison')) throw poison(id);
      if (!databaseUp) throw new DependencyError('ledger API: 503', { dependency: 'ledger-api' });
    });
    const trips: { at: number; reason: string }[] = [];
    h.bus.on('killswitch.tripped', (change) => {
      trips.push({ at: Date.parse(change.at) - START, reason: change.reason });
      if (trips.length === 1) databaseUp = true;
    });
    await h.start();
    for (let n = 0; n < 2; n++) await h.send('ledger', Entry, { id: `outage-${n}` });
    await h.advance(0);
    expect(h.bus.killSwitch('ledger').state).toBe('tripped');
    // The probe: it succeeds, and the switch closes, recovering.
    await h.send('ledger', Entry, { id: 'probe' });
    await h.send('ledger', Entry, { id: 'poison-1' });
    for (let n = 0; n < healthy; n++) await h.send('ledger', Entry, { id: `healthy-${n}` });
    if (settle) await h.settled();
    else await h.advance(3 * MINUTE);
    return { h, trips };
  }

  it('dead-letters a PermanentError poison at once, after at most one extra trip, and consumes the rest', async () => {
    const { h, trips } = await outageThenPoison((id) => new PermanentError(`${id} breaks a business rule`), {
      kind: 'none',
    });
    expect(h.deadLettered().map((d) => [(d.message as { id: string }).id, d.fault.reason])).toEqual([
      ['poison-1', 'permanent-failure'],
    ]);
    expect(trips.length).toBeLessThanOrEqual(2);
    expect(
      h
        .consumed()
        .map((c) => (c.message as { id: string }).id)
        .sort(),
    ).toEqual([...['probe', 'outage-0', 'outage-1'], ...Array.from({ length: 6 }, (_, n) => `healthy-${n}`)].sort());
    expect(h.bus.killSwitch('ledger').view()).toMatchObject({ state: 'closed' });
    expect(h.bus.killSwitch('ledger').view().recovering).toBeUndefined();
  });

  it('dead-letters a plain-error poison after its retries, after at most one extra trip', async () => {
    const { h, trips } = await outageThenPoison((id) => new Error(`${id}: cannot parse ledger line`), {
      kind: 'exponential',
      retries: 3,
      initialMs: 10_000,
      factor: 2,
      maxMs: 60_000,
      jitter: 0,
    });
    expect(h.deadLettered().map((d) => [(d.message as { id: string }).id, d.fault.reason, d.fault.attempts])).toEqual([
      ['poison-1', 'retries-exhausted', 4],
    ]);
    expect(trips.length).toBeLessThanOrEqual(2);
    expect(h.consumed()).toHaveLength(9);
    expect(h.bus.killSwitch('ledger').state).toBe('closed');
  });

  it('sets the poison aside while the endpoint recovers when it comes back too soon, then dead-letters it', async () => {
    // One healthy message: the poison is back (behind it) before the endpoint has recovered, and
    // nothing else arrives for a while: it waits, set aside, without tripping the switch again.
    const h = await outageThenPoison(
      (id) => new PermanentError(`${id} breaks a business rule`),
      { kind: 'none' },
      { healthy: 1, settle: false },
    );
    await h.h.advance(30 * MINUTE);
    const poisonRuns = () =>
      h.h.outcomes
        .filter((o) => (o.message as { id: string }).id === 'poison-1')
        .map((o) => (o.outcome?.kind === 'released' ? `released ${o.outcome.reason}` : o.outcome?.kind));
    expect(poisonRuns().slice(0, 3)).toEqual(['released kill-switch', 'released kill-switch', 'released kill-switch']);
    expect(h.trips.map((t) => t.reason)).toEqual([
      '2 consecutive dependency failures (ledger-api)',
      'failure while recovering from: 2 consecutive dependency failures (ledger-api)',
    ]);
    expect(h.h.bus.killSwitch('ledger').view()).toMatchObject({ state: 'closed', recovering: { successesNeeded: 1 } });
    expect(h.h.deadLettered()).toHaveLength(0);

    // Traffic again: the endpoint recovers, and the poison is dead-lettered as on a healthy endpoint.
    await h.h.send('ledger', Entry, { id: 'later' });
    await h.h.settled();
    expect(poisonRuns().at(-1)).toBe('deadLetter');
    expect(h.h.deadLettered().map((d) => d.fault.reason)).toEqual(['permanent-failure']);
    expect(h.trips).toHaveLength(2);
    expect(h.h.consumed()).toHaveLength(5);
    expect(h.h.bus.killSwitch('ledger').view().recovering).toBeUndefined();
  });

  it('still trips at once when the outage goes on after a probe succeeded, and dead-letters nothing more', async () => {
    const h = harness({
      config: {
        endpoints: {
          ledger: {
            concurrency: 1,
            retry: { kind: 'none' },
            killSwitch: { consecutiveFailures: 3, restartDelayMs: { initial: MINUTE, factor: 2, max: 60 * MINUTE } },
          },
        },
      },
    });
    // The database answers one statement in four: a probe may succeed while the outage goes on.
    let calls = 0;
    h.bus.endpoint('ledger').handle(Entry, async () => {
      if (++calls % 4 !== 0) throw new Error('connect ECONNREFUSED 10.0.0.5:5432');
    });
    const trips: string[] = [];
    h.bus.on('killswitch.tripped', (change) => {
      trips.push(change.reason);
    });
    await h.start();
    for (let n = 0; n < 40; n++) await h.send('ledger', Entry, { id: `m-${n}` });
    await h.advance(6 * 60 * MINUTE);
    // The outage's budget (three), spent once; every later failure is released.
    expect(h.deadLettered()).toHaveLength(3);
    expect(trips.length).toBeGreaterThan(3);
    expect(trips.slice(1).every((r) => /while recovering|probe failed/.test(r))).toBe(true);
  });
});
