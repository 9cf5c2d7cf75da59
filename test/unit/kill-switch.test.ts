import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createBus } from '../../src/bus/create-bus.js';
import { createFault, type DeadLetterReason } from '../../src/errors/fault.js';
import { ManualClock } from '../../src/internal/clock.js';
import { classifyOutcome } from '../../src/killswitch/classify-outcome.js';
import { BUCKETS, FailureWindow } from '../../src/killswitch/failure-window.js';
import { KillSwitch, type PausableConsumer } from '../../src/killswitch/kill-switch.js';
import { type KillSwitchConfigInput, KillSwitchConfigSchema } from '../../src/killswitch/kill-switch-config.js';
import { Admission, KillSwitchPolicy, type OutcomeClass } from '../../src/killswitch/kill-switch-policy.js';
import type { Outcome } from '../../src/pipeline/outcome.js';
import { RetryLaterSignal } from '../../src/retry/control-signals.js';
import type { BusEvents } from '../../src/telemetry/events.js';
import type { KillSwitchChange } from '../../src/killswitch/kill-switch-events.js';
import { throughGate } from '../support/pipeline-runs.js';

const config = (over: KillSwitchConfigInput = {}) =>
  KillSwitchConfigSchema.parse({ restartDelayMs: { initial: 1_000, factor: 2, max: 5_000 }, ...over });

const policy = (over: KillSwitchConfigInput = {}) => {
  const clock = new ManualClock();
  return { clock, p: new KillSwitchPolicy(config(over), clock) };
};

/** Admits one message and records its result, as the gate does. */
const run = (p: KillSwitchPolicy, result: OutcomeClass) => p.record(p.admit(), result);

const deadLetter = (reason: DeadLetterReason): Outcome => ({
  kind: 'deadLetter',
  fault: createFault({
    reason,
    description: `${reason}: database down at postgres://app:hunter2@db/app`,
    error: new Error('database down'),
    attempts: 3,
    endpoint: 'ledger',
    originalAddress: 'ledger',
    now: new Date('2026-01-01T00:00:00Z'),
    messageId: 'm-1',
    messageType: 'ledger.entry.v1',
  }),
});
const retry = (error: unknown = new Error('database down')): Outcome => ({
  kind: 'retry',
  delayMs: 60_000,
  headers: {},
  attempt: 2,
  error,
  retryLater: error instanceof RetryLaterSignal,
});

describe('kill switch policy', () => {
  it('admits everything while closed', () => {
    const { p } = policy();
    expect(p.state).toBe('closed');
    expect(p.admit()).toBeGreaterThanOrEqual(0);
    expect(p.admit()).toBe(p.admit());
  });

  it('trips on the Nth consecutive failure and settles that failure as decided', () => {
    const { p } = policy({ consecutiveFailures: 3 });
    expect(run(p, 'failure')).toEqual({ afterTrip: false });
    expect(run(p, 'failure').transition).toBeUndefined();
    const third = run(p, 'failure');
    expect(third.afterTrip).toBe(false);
    expect(third.transition).toMatchObject({
      from: 'closed',
      to: 'tripped',
      cause: 'rule',
      reason: '3 consecutive failures',
      manual: false,
      consecutiveTrips: 1,
    });
    expect(p.state).toBe('tripped');
  });

  it('starts the consecutive count over after a success, and ignores neutral outcomes', () => {
    const { p } = policy({ consecutiveFailures: 3 });
    run(p, 'failure');
    run(p, 'failure');
    run(p, 'success');
    run(p, 'failure');
    run(p, 'neutral');
    run(p, 'failure');
    expect(p.state).toBe('closed');
    expect(p.snapshot().consecutiveFailures).toBe(2);
    expect(run(p, 'failure').transition?.to).toBe('tripped');
  });

  it('releases instead of admitting while tripped, and marks late outcomes of earlier admissions', () => {
    const { p } = policy({ consecutiveFailures: 1 });
    const early = p.admit();
    const tripping = p.admit();
    expect(p.record(tripping, 'failure').transition?.to).toBe('tripped');
    expect(p.admit()).toBe(Admission.release);
    // Admitted before the trip, finished after: not counted, and a failure is to be released.
    expect(p.record(early, 'failure')).toEqual({ afterTrip: true });
    expect(p.snapshot().consecutiveFailures).toBe(1);
  });

  it('waits the restart delay, then probes', () => {
    const { p, clock } = policy({ consecutiveFailures: 1 });
    const tripped = run(p, 'failure').transition;
    expect(tripped?.restartAt).toBe(clock.now() + 1_000);
    expect(p.restartDueIn()).toBe(1_000);
    clock.advance(999);
    expect(p.tick()).toBeUndefined();
    clock.advance(1);
    expect(p.tick()).toMatchObject({ from: 'tripped', to: 'probing', cause: 'restart' });
    expect(p.state).toBe('probing');
    expect(p.restartDueIn()).toBeUndefined();
  });

  it('admits only the probe messages while probing and closes when all of them succeeded', () => {
    const { p, clock } = policy({ consecutiveFailures: 1, probeMessages: 2 });
    run(p, 'failure');
    clock.advance(1_000);
    p.tick();
    const a = p.admit();
    const b = p.admit();
    expect(a).toBeGreaterThanOrEqual(0);
    expect(p.admit()).toBe(Admission.wait);
    expect(p.record(a, 'success').transition).toBeUndefined();
    expect(p.admit()).toBe(Admission.wait);
    expect(p.record(b, 'success').transition).toMatchObject({
      from: 'probing',
      to: 'closed',
      cause: 'probe-succeeded',
      // The outage is not over until the endpoint proved healthy: the trip count is kept for now.
      consecutiveTrips: 1,
    });
    expect(p.admit()).toBeGreaterThanOrEqual(0);
  });

  it('frees a probe slot when a probe ends neutral', () => {
    const { p, clock } = policy({ consecutiveFailures: 1 });
    run(p, 'failure');
    clock.advance(1_000);
    p.tick();
    const probe = p.admit();
    expect(p.admit()).toBe(Admission.wait);
    expect(p.record(probe, 'neutral')).toEqual({ afterTrip: false });
    expect(p.admit()).toBeGreaterThanOrEqual(0);
  });

  it('trips again when a probe fails, waiting longer each time up to the cap', () => {
    const { p, clock } = policy({ consecutiveFailures: 1, restartDelayMs: { initial: 1_000, factor: 3, max: 5_000 } });
    const delays: number[] = [];
    let transition = run(p, 'failure').transition;
    for (let i = 0; i < 4; i++) {
      const wait = (transition?.restartAt ?? 0) - clock.now();
      delays.push(wait);
      clock.advance(wait);
      expect(p.tick()?.to).toBe('probing');
      transition = run(p, 'failure').transition;
      expect(transition).toMatchObject({ to: 'tripped', cause: 'probe-failed', consecutiveTrips: i + 2 });
    }
    expect(delays).toEqual([1_000, 3_000, 5_000, 5_000]);
  });

  it('computes the restart delay as initial × factor^(trips − 1), capped', () => {
    const { p } = policy({ restartDelayMs: { initial: 50, factor: 2, max: 300 } });
    expect([1, 2, 3, 4, 5].map((n) => p.restartDelay(n))).toEqual([50, 100, 200, 300, 300]);
  });

  it('starts the backoff over once the endpoint proved healthy after a probe succeeded', () => {
    const { p, clock } = policy({ consecutiveFailures: 2 });
    run(p, 'failure');
    run(p, 'failure');
    clock.advance(1_000);
    p.tick();
    run(p, 'failure');
    clock.advance(2_000);
    p.tick();
    expect(run(p, 'success').transition?.to).toBe('closed');
    expect(p.snapshot().recovering).toEqual({ successesNeeded: 2 });
    run(p, 'success');
    run(p, 'success');
    expect(p.snapshot().recovering).toBeUndefined();
    run(p, 'failure');
    expect(run(p, 'failure').transition).toMatchObject({ consecutiveTrips: 1, restartAt: clock.now() + 1_000 });
  });

  it('keeps the backoff growing when a failure trips it again while it recovers', () => {
    const { p, clock } = policy({ consecutiveFailures: 1 });
    run(p, 'failure');
    clock.advance(1_000);
    p.tick();
    expect(run(p, 'success').transition?.to).toBe('closed');
    const again = run(p, 'failure');
    // Turned away: released rather than dead-lettered, the outage's budget was spent.
    expect(again.afterTrip).toBe(true);
    expect(again.transition).toMatchObject({
      to: 'tripped',
      cause: 'rule',
      reason: 'failure while recovering from: 1 consecutive failures',
      consecutiveTrips: 2,
      restartAt: clock.now() + 2_000,
    });
  });

  it('stays tripped by hand until reset, whatever time passes', () => {
    const { p, clock } = policy();
    expect(p.trip('database migration')).toMatchObject({
      from: 'closed',
      to: 'tripped',
      cause: 'manual',
      manual: true,
      reason: 'database migration',
    });
    expect(p.trip('again')).toBeUndefined();
    expect(p.snapshot().trip?.reason).toBe('database migration');
    clock.advance(24 * 3_600_000);
    expect(p.tick()).toBeUndefined();
    expect(p.restartDueIn()).toBeUndefined();
    expect(p.admit()).toBe(Admission.release);
    expect(p.reset('migration done')).toMatchObject({ from: 'tripped', to: 'closed', cause: 'reset', manual: true });
    expect(p.reset()).toBeUndefined();
    expect(p.admit()).toBeGreaterThanOrEqual(0);
  });

  it('turns an automatic trip into a manual one that no longer restarts', () => {
    const { p, clock } = policy({ consecutiveFailures: 1 });
    run(p, 'failure');
    expect(p.trip('investigating')?.manual).toBe(true);
    clock.advance(10_000);
    expect(p.tick()).toBeUndefined();
    expect(p.state).toBe('tripped');
  });

  it('clears counts and backoff on reset, and counts outcomes admitted before it', () => {
    const { p } = policy({ consecutiveFailures: 2 });
    const before = p.admit();
    run(p, 'failure');
    run(p, 'failure');
    p.reset();
    expect(p.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, consecutiveTrips: 0 });
    // In flight since before the trip, failing after the reset while the outage may go on: counted,
    // and since the endpoint is still recovering it trips the switch again and is released.
    const late = p.record(before, 'failure');
    expect(late.afterTrip).toBe(true);
    expect(late.transition).toMatchObject({
      to: 'tripped',
      reason: 'failure while recovering from: 2 consecutive failures',
    });
  });

  it('lets a reset after a manual trip of a healthy endpoint count failures from zero', () => {
    const { p } = policy({ consecutiveFailures: 2 });
    const before = p.admit();
    p.trip('maintenance');
    p.reset();
    expect(p.snapshot().recovering).toBeUndefined();
    expect(p.record(before, 'failure')).toEqual({ afterTrip: false });
    expect(p.snapshot().consecutiveFailures).toBe(1);
  });

  it('never trips on its own when disabled, but can be tripped by hand', () => {
    const { p } = policy({ enabled: false, consecutiveFailures: 1 });
    for (let i = 0; i < 50; i++) run(p, 'failure');
    expect(p.state).toBe('closed');
    expect(p.trip('by hand')?.to).toBe('tripped');
  });

  it('counts bad input (not admitted) only while closed', () => {
    const { p, clock } = policy({ consecutiveFailures: 2 });
    p.record(Admission.unadmitted, 'failure');
    expect(p.record(Admission.unadmitted, 'failure').transition?.to).toBe('tripped');
    expect(p.record(Admission.unadmitted, 'failure')).toEqual({ afterTrip: true });
    clock.advance(1_000);
    p.tick();
    // Probing: the consumer runs again, so bad input is settled as decided rather than bounced back.
    expect(p.record(Admission.unadmitted, 'failure')).toEqual({ afterTrip: false });
    expect(p.state).toBe('probing');
  });

  describe('dependency failures', () => {
    it('trips after dependencyFailures in a row, whatever the handler failures do', () => {
      const { p } = policy({ consecutiveFailures: 2, dependencyFailures: 3 });
      p.record(p.admit(), 'dependency', { detail: 'inbox (postgres)' });
      run(p, 'failure');
      p.record(p.admit(), 'dependency', { detail: 'inbox (postgres)' });
      expect(p.state).toBe('closed');
      expect(p.snapshot()).toMatchObject({ consecutiveFailures: 1, consecutiveDependencyFailures: 2 });
      expect(p.record(p.admit(), 'dependency', { detail: 'inbox (postgres)' }).transition).toMatchObject({
        to: 'tripped',
        cause: 'rule',
        reason: '3 consecutive dependency failures (inbox (postgres))',
      });
    });

    it('starts the dependency count over after a success', () => {
      const { p } = policy({ dependencyFailures: 2 });
      run(p, 'dependency');
      run(p, 'success');
      expect(run(p, 'dependency').transition).toBeUndefined();
      expect(run(p, 'dependency').transition?.to).toBe('tripped');
    });

    it('never trips on dependency failures with the rule off, nor when disabled', () => {
      for (const over of [{ dependencyFailures: false as const }, { enabled: false }]) {
        const { p } = policy(over);
        for (let i = 0; i < 100; i++) run(p, 'dependency');
        expect(p.state).toBe('closed');
      }
    });

    it('trips again on the first dependency failure while it recovers', () => {
      const { p, clock } = policy({ dependencyFailures: 3 });
      for (let i = 0; i < 3; i++) run(p, 'dependency');
      clock.advance(1_000);
      p.tick();
      expect(run(p, 'success').transition?.to).toBe('closed');
      expect(run(p, 'dependency').transition).toMatchObject({
        to: 'tripped',
        reason: 'dependency failure while recovering from: 3 consecutive dependency failures',
      });
    });

    it('trips again when a probe meets the dependency still down, and turns the probe away', () => {
      const { p, clock } = policy({ dependencyFailures: 1 });
      run(p, 'dependency');
      clock.advance(1_000);
      p.tick();
      const probe = p.admit();
      expect(p.isProbe(probe)).toBe(true);
      const failed = p.record(probe, 'dependency', { detail: 'inbox (sqlite)' });
      expect(failed).toMatchObject({ afterTrip: true, delayMs: 1 });
      expect(failed.transition).toMatchObject({
        cause: 'probe-failed',
        reason: 'probe failed: dependency failure (inbox (sqlite))',
        consecutiveTrips: 2,
      });
    });
  });

  describe('a run of failures weighed against the recent past', () => {
    it('does not trip on a burst of failures shorter than the successes just before it', () => {
      const { p } = policy({ consecutiveFailures: 10, recentOutcomes: 50 });
      for (let i = 0; i < 30; i++) run(p, 'success');
      // The last messages in flight at the end of a drain were poison: twenty in a row.
      for (let i = 0; i < 20; i++) run(p, 'failure');
      expect(p.state).toBe('closed');
      expect(p.snapshot().consecutiveFailures).toBe(20);
    });

    it('trips once the run outnumbers the successes among the recent outcomes', () => {
      const { p } = policy({ consecutiveFailures: 10, recentOutcomes: 50 });
      for (let i = 0; i < 1_000; i++) run(p, 'success');
      for (let i = 0; i < 24; i++) expect(run(p, 'failure').transition).toBeUndefined();
      expect(run(p, 'failure').transition).toMatchObject({ to: 'tripped', reason: '25 consecutive failures' });
    });

    it('trips at consecutiveFailures when nothing succeeded before the run', () => {
      const { p } = policy({ consecutiveFailures: 10, recentOutcomes: 50 });
      for (let i = 0; i < 9; i++) run(p, 'failure');
      expect(run(p, 'failure').transition?.reason).toBe('10 consecutive failures');
    });

    it('does not lengthen the run with messages that were already failing while others succeeded', () => {
      const { p, clock } = policy({ consecutiveFailures: 3, recentOutcomes: 0 });
      const firstFailureAt = clock.now();
      clock.advance(10);
      run(p, 'success');
      clock.advance(10);
      // Poison retried in process while the rest of the drain succeeded: its own fault.
      for (let i = 0; i < 10; i++)
        expect(p.record(p.admit(), 'failure', { firstFailureAt }).transition).toBeUndefined();
      expect(p.snapshot().consecutiveFailures).toBe(0);
      // A message that first failed after the last success does count.
      for (let i = 0; i < 2; i++) p.record(p.admit(), 'failure', { firstFailureAt: clock.now() });
      expect(p.record(p.admit(), 'failure', { firstFailureAt: clock.now() }).transition?.to).toBe('tripped');
    });

    it('settles a failure of a message that failed before the last success as decided while recovering', () => {
      const { p, clock } = policy({ consecutiveFailures: 1, recentOutcomes: 0 });
      const poisonFirstFailed = clock.now();
      run(p, 'failure');
      clock.advance(1_000);
      p.tick();
      clock.advance(1);
      expect(run(p, 'success').transition?.to).toBe('closed');
      expect(p.record(p.admit(), 'failure', { firstFailureAt: poisonFirstFailed })).toEqual({ afterTrip: false });
      expect(p.state).toBe('closed');
    });

    it('sets a poison message aside while recovering after one extra trip, then lets its retry policy decide', () => {
      const { p, clock } = policy({ consecutiveFailures: 2, recentOutcomes: 0 });
      run(p, 'failure');
      run(p, 'failure');
      clock.advance(1_000);
      p.tick();
      expect(run(p, 'success').transition?.to).toBe('closed');
      // A fresh poison message while recovering: one extra trip, released behind the others.
      const poison = { messageId: 'poison', firstFailureAt: clock.now() };
      expect(p.record(p.admit(), 'failure', poison)).toMatchObject({
        afterTrip: true,
        delayMs: 1,
        transition: { to: 'tripped', consecutiveTrips: 2 },
      });
      clock.advance(2_000);
      p.tick();
      expect(run(p, 'success').transition?.to).toBe('closed');
      // Back, failing again after others succeeded: set aside for the restart delay, not a trip.
      for (let i = 0; i < 3; i++) {
        expect(p.record(p.admit(), 'failure', { ...poison, firstFailureAt: clock.now() })).toEqual({
          afterTrip: true,
          delayMs: 2_000,
        });
      }
      expect(p.snapshot()).toMatchObject({
        state: 'closed',
        recovering: { successesNeeded: 2 },
        consecutiveFailures: 0,
      });
      // A fresh failure of another message still trips at once: the outage may be going on.
      expect(p.record(p.admit(), 'failure', { messageId: 'other', firstFailureAt: clock.now() }).transition?.to).toBe(
        'tripped',
      );
      clock.advance(4_000);
      p.tick();
      run(p, 'success');
      run(p, 'success');
      run(p, 'success');
      expect(p.snapshot().recovering).toBeUndefined();
      // Recovered: the poison's failures are settled as decided (its retry policy dead-letters it).
      expect(p.record(p.admit(), 'failure', { ...poison, firstFailureAt: clock.now() })).toEqual({ afterTrip: false });
    });

    it('gives no verdict on a suspect that fails as a probe after others succeeded: another message is probed', () => {
      const { p, clock } = policy({ consecutiveFailures: 2 });
      run(p, 'failure');
      run(p, 'failure');
      clock.advance(1_000);
      p.tick();
      run(p, 'success');
      // The poison trips the recovering switch, then a fresh failure of another message (the
      // outage, or a second poison) trips it again after a probe succeeded.
      p.record(p.admit(), 'failure', { messageId: 'poison' });
      clock.advance(2_000);
      p.tick();
      run(p, 'success');
      expect(p.record(p.admit(), 'failure', { messageId: 'other' }).transition?.to).toBe('tripped');
      clock.advance(4_000);
      p.tick();
      const probe = p.admit();
      expect(p.isProbe(probe)).toBe(true);
      expect(p.record(probe, 'failure', { messageId: 'poison' })).toEqual({ afterTrip: true, delayMs: 4_000 });
      expect(p.snapshot()).toMatchObject({ state: 'probing', probes: { inFlight: 0, succeeded: 0, needed: 1 } });
      expect(p.isProbe(p.admit())).toBe(true);
    });

    it('trips again on a suspect whose failure no success has answered since (a reset, the outage still on)', () => {
      const { p, clock } = policy({ consecutiveFailures: 2 });
      run(p, 'failure');
      run(p, 'failure');
      clock.advance(1_000);
      p.tick();
      expect(p.record(p.admit(), 'failure', { messageId: 'm' }).transition?.cause).toBe('probe-failed');
      p.reset('operator');
      expect(p.record(p.admit(), 'failure', { messageId: 'm' })).toMatchObject({
        afterTrip: true,
        transition: { to: 'tripped', reason: 'failure while recovering from: 2 consecutive failures' },
      });
    });

    it('lets the run alone decide with recentOutcomes 0', () => {
      const { p } = policy({ consecutiveFailures: 10, recentOutcomes: 0 });
      for (let i = 0; i < 1_000; i++) run(p, 'success');
      for (let i = 0; i < 9; i++) run(p, 'failure');
      expect(run(p, 'failure').transition?.to).toBe('tripped');
    });
  });

  describe('probes and outcomes in flight across state changes', () => {
    it('marks probe tickets, and only those', () => {
      const { p, clock } = policy({ consecutiveFailures: 1, probeMessages: 2 });
      expect(p.isProbe(p.admit())).toBe(false);
      run(p, 'failure');
      clock.advance(1_000);
      p.tick();
      expect(p.isProbe(p.admit())).toBe(true);
      expect(p.isProbe(p.admit())).toBe(true);
      expect(p.admit()).toBe(Admission.wait);
    });

    it('turns away failures admitted before probing started, and counts none of them as a verdict', () => {
      const { p, clock } = policy({ consecutiveFailures: 1 });
      const early = p.admit();
      run(p, 'failure');
      clock.advance(1_000);
      p.tick();
      expect(p.record(early, 'failure')).toEqual({ afterTrip: true });
      expect(p.record(early, 'dependency')).toEqual({ afterTrip: true });
      expect(p.record(early, 'success')).toEqual({ afterTrip: false });
      expect(p.state).toBe('probing');
      expect(p.snapshot().probes).toEqual({ inFlight: 0, succeeded: 0, needed: 1 });
    });

    it('bounds the dead letters of an outage by the threshold across probes and resets', () => {
      // Every failure the switch lets be settled as decided is a potential dead letter.
      const { p, clock } = policy({
        consecutiveFailures: 3,
        restartDelayMs: { initial: 1_000, factor: 2, max: 4_000 },
      });
      let settledAsDecided = 0;
      const fail = (ticket = p.admit()) => {
        if (ticket < 0) return;
        const o = p.record(ticket, 'failure');
        if (!o.afterTrip) settledAsDecided++;
      };
      const inFlight = [p.admit(), p.admit(), p.admit(), p.admit()];
      for (let i = 0; i < 3; i++) fail();
      expect(p.state).toBe('tripped');
      for (const ticket of inFlight) fail(ticket);
      for (let round = 0; round < 5; round++) {
        p.reset('operator: is it back?');
        const burst = [p.admit(), p.admit(), p.admit()];
        for (const ticket of burst) fail(ticket);
        expect(p.state).toBe('tripped');
      }
      clock.advance(60_000);
      for (let probe = 0; probe < 5; probe++) {
        expect(p.tick()?.to).toBe('probing');
        fail();
        expect(p.state).toBe('tripped');
        clock.advance(60_000);
      }
      // Only the failures that tripped the healthy switch; none after, through resets and probes.
      expect(settledAsDecided).toBe(3);
    });
  });

  describe('failure rate', () => {
    const rate = {
      consecutiveFailures: false as const,
      failureRate: { threshold: 0.5, windowMs: 10_000, minimumMessages: 10 },
    };

    it('does not trip before the minimum number of messages', () => {
      const { p } = policy(rate);
      for (let i = 0; i < 9; i++) run(p, 'failure');
      expect(p.state).toBe('closed');
      expect(run(p, 'failure').transition).toMatchObject({
        to: 'tripped',
        reason: 'failure rate 100% reached 50%: 10 of 10 messages in 10000 ms',
      });
    });

    it('trips when the rate reaches the threshold, not below it', () => {
      const { p } = policy(rate);
      // 4 failures in 10 (40%): no trip.
      for (let i = 0; i < 6; i++) run(p, 'success');
      for (let i = 0; i < 4; i++) run(p, 'failure');
      expect(p.state).toBe('closed');
      // The 5th failure of 11 (45%) neither; the 6th of 12 (50%) trips.
      run(p, 'failure');
      expect(p.state).toBe('closed');
      expect(run(p, 'failure').transition?.reason).toBe('failure rate 50% reached 50%: 6 of 12 messages in 10000 ms');
    });

    it('forgets outcomes that slid out of the window', () => {
      const { p, clock } = policy(rate);
      for (let i = 0; i < 9; i++) run(p, 'failure');
      clock.advance(10_000);
      // The 9 old failures are gone: 1 of 1 is below the minimum.
      run(p, 'failure');
      expect(p.state).toBe('closed');
      expect(p.snapshot().window).toEqual({ messages: 1, failures: 1 });
      for (let i = 0; i < 9; i++) run(p, 'success');
      expect(p.state).toBe('closed');
      expect(p.snapshot().window).toEqual({ messages: 10, failures: 1 });
    });

    it('keeps failures inside the window as it slides', () => {
      const { p, clock } = policy(rate);
      for (let i = 0; i < 10; i++) {
        run(p, i % 2 === 0 ? 'success' : 'failure');
        clock.advance(900);
      }
      // Over 9 s: every outcome is still inside the 10 s window.
      expect(p.snapshot().window).toEqual({ messages: 10, failures: 5 });
    });

    it('works together with the consecutive rule: whichever fires first', () => {
      const { p } = policy({ ...rate, consecutiveFailures: 3 });
      run(p, 'success');
      run(p, 'failure');
      run(p, 'failure');
      expect(run(p, 'failure').transition?.reason).toBe('3 consecutive failures');
    });
  });
});

describe('failure window', () => {
  it('slides in steps of a twentieth of the window', () => {
    const w = new FailureWindow(20_000);
    expect(BUCKETS).toBe(20);
    w.record(0, true);
    w.record(500, false);
    expect(w.counts(500)).toEqual({ messages: 2, failures: 1 });
    expect(w.counts(19_999)).toEqual({ messages: 2, failures: 1 });
    expect(w.counts(20_000)).toEqual({ messages: 0, failures: 0 });
  });

  it('reuses a slot for a later bucket without mixing counts', () => {
    const w = new FailureWindow(2_000);
    w.record(0, true);
    w.record(2_000, false);
    expect(w.counts(2_000)).toEqual({ messages: 1, failures: 0 });
    w.clear();
    expect(w.counts(2_000)).toEqual({ messages: 0, failures: 0 });
  });
});

describe('classifyOutcome', () => {
  it.each<[string, Outcome, boolean, string]>([
    ['completed', { kind: 'completed' }, false, 'success'],
    ['a duplicate', { kind: 'skipped', reason: 'duplicate' }, false, 'success'],
    ['retries exhausted', deadLetter('retries-exhausted'), false, 'failure'],
    ['a permanent failure', deadLetter('permanent-failure'), false, 'failure'],
    ['ctx.deadLetter()', deadLetter('handler-dead-lettered'), false, 'failure'],
    ['a release for delayed redelivery', retry(), false, 'failure'],
    ['ctx.retryLater()', retry(new RetryLaterSignal(1_000, 'not yet')), false, 'neutral'],
    ['a schema violation', deadLetter('schema-violation'), false, 'neutral'],
    ['a schema violation with countBadInput', deadLetter('schema-violation'), true, 'failure'],
    ['an undecodable body with countBadInput', deadLetter('undecodable'), true, 'failure'],
    ['a stale message', deadLetter('stale'), true, 'neutral'],
    ['a release', { kind: 'released', reason: 'busy' }, false, 'neutral'],
  ])('classifies %s', (_what, outcome, countBadInput, expected) => {
    expect(classifyOutcome(outcome, countBadInput)).toBe(expected);
  });
});

describe('kill switch runtime', () => {
  const setup = (over: KillSwitchConfigInput = {}) => {
    const clock = new ManualClock();
    const calls: string[] = [];
    const events: [keyof BusEvents, KillSwitchChange][] = [];
    const consumer: PausableConsumer = {
      pause: async () => {
        calls.push('pause');
      },
      resume: async () => {
        calls.push('resume');
      },
    };
    const listeners: ((name: keyof BusEvents, change: KillSwitchChange) => void)[] = [];
    const ks = new KillSwitch({
      endpoint: 'ledger',
      config: config({ consecutiveFailures: 2, ...over }),
      clock,
      logger: pino({ level: 'silent' }),
      emit: (name, payload) => {
        // Only kill switch events come from a kill switch.
        const change = payload as KillSwitchChange;
        events.push([name, change]);
        for (const l of listeners) l(name, change);
      },
      consumer: () => consumer,
    });
    const signal = new AbortController().signal;
    const admit = () => ks.admit(signal) as number;
    const fail = () => ks.observe(admit(), deadLetter('retries-exhausted'), undefined);
    return { clock, calls, events, ks, admit, fail, listeners, signal };
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('pauses the consumer on a trip, resumes it to probe, and emits each change in order', async () => {
    const { ks, clock, calls, events, fail, admit } = setup();
    fail();
    expect(fail().kind).toBe('deadLetter');
    await settle();
    expect(calls).toEqual(['pause']);
    expect(events.map(([name]) => name)).toEqual(['killswitch.tripped']);
    expect(events[0]?.[1]).toMatchObject({
      endpoint: 'ledger',
      from: 'closed',
      to: 'tripped',
      reason: '2 consecutive failures',
      manual: false,
      consecutiveTrips: 1,
      at: '2026-01-01T00:00:00.000Z',
      restartAt: '2026-01-01T00:00:01.000Z',
    });
    clock.advance(1_000);
    await settle();
    expect(calls).toEqual(['pause', 'resume']);
    expect(ks.state).toBe('probing');
    ks.observe(admit(), { kind: 'completed' }, undefined);
    expect(events.map(([name]) => name)).toEqual(['killswitch.tripped', 'killswitch.probing', 'killswitch.closed']);
    expect(ks.view()).toMatchObject({
      state: 'closed',
      trips: 1,
      consecutiveTrips: 1,
      recovering: { successesNeeded: 2 },
    });
  });

  it('releases failures that arrive after the trip instead of dead-lettering them', () => {
    const { ks, admit, fail } = setup();
    const running = admit();
    const waitingRetry = admit();
    fail();
    fail();
    expect(ks.observe(running, deadLetter('retries-exhausted'), undefined)).toEqual({
      kind: 'released',
      reason: 'kill-switch',
    });
    expect(ks.observe(waitingRetry, retry(), undefined)).toEqual({ kind: 'released', reason: 'kill-switch' });
    expect(ks.view().released).toBe(2);
  });

  it('keeps what the last failure was, with secrets masked', () => {
    const { ks, fail } = setup();
    fail();
    expect(ks.view().lastFailure).toEqual({
      at: '2026-01-01T00:00:00.000Z',
      reason: 'retries-exhausted',
      description: 'retries-exhausted: database down at postgres://app:***@db/app',
      errorName: 'Error',
      messageId: 'm-1',
      messageType: 'ledger.entry.v1',
    });
  });

  it('holds deliveries beyond the probe slots until the verdict, then lets them through', async () => {
    const { ks, clock, admit, fail, signal } = setup();
    fail();
    fail();
    clock.advance(1_000);
    const probe = admit();
    const held = ks.admit(signal);
    expect(held).toBeInstanceOf(Promise);
    ks.observe(probe, { kind: 'completed' }, undefined);
    expect(await held).toBeGreaterThanOrEqual(0);
  });

  it('releases held deliveries when the probe fails', async () => {
    const { ks, clock, admit, fail, signal } = setup();
    fail();
    fail();
    clock.advance(1_000);
    const probe = admit();
    const held = ks.admit(signal);
    ks.observe(probe, deadLetter('retries-exhausted'), undefined);
    expect(await held).toBe(Admission.release);
    expect(ks.view()).toMatchObject({ state: 'tripped', consecutiveTrips: 2 });
  });

  it('lets a held delivery go when the endpoint stops', async () => {
    const { ks, clock, admit, fail } = setup();
    fail();
    fail();
    clock.advance(1_000);
    admit();
    const stopping = new AbortController();
    const held = ks.admit(stopping.signal);
    stopping.abort();
    expect(await held).toBe(Admission.shutdown);
  });

  it('stays tripped by hand through any time, and a reset resumes the consumer', async () => {
    const { ks, clock, calls, events } = setup();
    ks.trip('deploying a fix');
    ks.trip('deploying a fix');
    clock.advance(3_600_000);
    await settle();
    expect(ks.state).toBe('tripped');
    expect(ks.view()).toMatchObject({ manual: true, reason: 'deploying a fix', trippedAt: '2026-01-01T00:00:00.000Z' });
    expect(ks.view().restartAt).toBeUndefined();
    ks.reset('fixed');
    await settle();
    expect(calls).toEqual(['pause', 'resume']);
    expect(events.map(([name, e]) => [name, e.reason])).toEqual([
      ['killswitch.tripped', 'deploying a fix'],
      ['killswitch.reset', 'fixed'],
    ]);
  });

  it('cancels the restart timer when closed', () => {
    const { ks, clock, fail } = setup();
    fail();
    fail();
    expect(clock.pendingTimers).toBe(1);
    ks.close();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(10_000);
    expect(ks.state).toBe('tripped');
  });

  it('survives a listener that trips or resets re-entrantly', async () => {
    const { ks, calls, listeners, fail } = setup();
    listeners.push((name) => {
      if (name === 'killswitch.tripped') ks.reset('auto-reset by listener');
    });
    fail();
    fail();
    await settle();
    expect(ks.state).toBe('closed');
    // Paused and resumed, never left paused.
    expect(calls.at(-1) ?? 'resume').toBe('resume');
  });
});

describe('kill switch and health configuration', () => {
  it('fills the defaults', () => {
    expect(KillSwitchConfigSchema.parse({})).toEqual({
      enabled: true,
      consecutiveFailures: 10,
      recentOutcomes: 50,
      dependencyFailures: 3,
      countBadInput: false,
      restartDelayMs: { initial: 30_000, factor: 2, max: 600_000 },
      probeMessages: 1,
    });
  });

  it('names the field of a bad setting', () => {
    const bus = createBus({}, { logger: pino({ level: 'silent' }) });
    expect(() =>
      bus.endpoint('ledger', { killSwitch: { failureRate: { threshold: 1.5, windowMs: 1_000, minimumMessages: 5 } } }),
    ).toThrow(/endpoints\.ledger\.killSwitch\.failureRate\.threshold: /);
    expect(() => bus.endpoint('audit', { killSwitch: { restartDelayMs: { initial: 5_000, max: 1_000 } } })).toThrow(
      /endpoints\.audit\.killSwitch\.restartDelayMs\.max: restartDelayMs.max must be at least restartDelayMs.initial/,
    );
    expect(() => createBus({ health: { token: 'short' } })).toThrow(/health\.token: must be at least 16 characters/);
  });
});

describe('gate stage', () => {
  const probing = () => {
    const clock = new ManualClock();
    const ks = new KillSwitch({
      endpoint: 'ledger',
      config: config({ consecutiveFailures: 1 }),
      clock,
      logger: pino({ level: 'silent' }),
      emit: () => {},
      consumer: () => undefined,
    });
    ks.observe(ks.admit(new AbortController().signal) as number, deadLetter('retries-exhausted'), undefined);
    clock.advance(1_000);
    expect(ks.state).toBe('probing');
    return ks;
  };
  it('gives the probe slot back when a later stage throws', async () => {
    const ks = probing();
    expect(
      await throughGate(ks, () => {
        throw new Error('bug in a stage');
      }),
    ).toMatchObject({ error: 'Error: bug in a stage' });
    expect(await throughGate(ks, () => Promise.reject(new Error('async bug')))).toMatchObject({
      error: 'Error: async bug',
    });
    expect(await throughGate(ks, async () => ({ kind: 'completed' }))).toMatchObject({
      outcome: { kind: 'completed' },
    });
    expect(ks.state).toBe('closed');
  });

  it('releases while tripped without running the rest', async () => {
    const ks = probing();
    ks.trip('maintenance');
    let ran = false;
    const report = await throughGate(ks, async () => {
      ran = true;
      return { kind: 'completed' };
    });
    expect(report).toMatchObject({ outcome: { kind: 'released', reason: 'kill-switch' } });
    expect(ran).toBe(false);
  });
});
