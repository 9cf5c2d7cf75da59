import { describe, expect, it } from 'vitest';
import type { BusHealth } from '../../src/index.js';
import { busView, endpointsOf } from '../../src/health/health-view.js';

const SECRET_TEXT = 'connect ECONNREFUSED kafka-7.internal.example:9092 (group billing)';

const health: BusHealth = {
  state: 'started',
  transport: { kind: 'kafka', state: 'connected' },
  endpoints: {
    billing: {
      state: 'running',
      inFlight: 0,
      counters: {
        received: 1,
        completed: 1,
        skipped: 0,
        retried: 0,
        deadLettered: 0,
        released: 0,
        settleFailures: 0,
        skippedByReason: {},
      },
      killSwitch: {
        state: 'closed',
        enabled: true,
        manual: false,
        consecutiveTrips: 0,
        consecutiveFailures: 0,
        trips: 0,
        released: 0,
      },
      consumer: {
        state: 'restarting',
        paused: false,
        since: '2026-11-30T10:00:00.000Z',
        reason: SECRET_TEXT,
        failedAttempts: 2,
        lastAttemptError: SECRET_TEXT,
        nextAttemptAt: '2026-11-30T10:00:04.000Z',
        restarts: 3,
      },
    },
  } as unknown as BusHealth['endpoints'],
};

describe('the health view without a token', () => {
  it('shows a stopped consumer’s state and times, not the texts of its errors', () => {
    const open = endpointsOf(health, false).get('billing');
    expect(open?.consumer).toEqual({
      state: 'restarting',
      paused: false,
      since: '2026-11-30T10:00:00.000Z',
      failedAttempts: 2,
      nextAttemptAt: '2026-11-30T10:00:04.000Z',
      restarts: 3,
    });
    expect(JSON.stringify(busView(health, false))).not.toContain('internal.example');
  });

  it('shows the texts to a caller with a token', () => {
    expect(endpointsOf(health, true).get('billing')?.consumer).toMatchObject({ reason: SECRET_TEXT });
  });
});
