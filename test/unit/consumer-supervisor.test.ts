import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { consumerRestartDelayMs, DEFAULT_CONSUMER_RESTART } from '../../src/bus/consumer-restart-config.js';
import { ConsumerSupervisor } from '../../src/bus/consumer-supervisor.js';
import { ManualClock } from '../../src/internal/clock.js';
import { createDeferred, type Deferred } from '../../src/internal/deferred.js';
import type { ConsumerChange } from '../../src/telemetry/events.js';
import type { Consumer, ConsumerStatus } from '../../src/transport-core/index.js';

/** A consumer the test drives: it records what it was asked and reports what the test says. */
class ScriptedConsumer implements Consumer {
  readonly calls: string[] = [];
  inFlight = 0;
  constructor(
    readonly paused: boolean,
    readonly report: (status: ConsumerStatus) => void,
  ) {}
  async pause(): Promise<void> {
    this.calls.push('pause');
  }
  async resume(): Promise<void> {
    this.calls.push('resume');
  }
  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.calls.push(`close:${options.drainTimeoutMs ?? 0}`);
  }
}

const config = { initialDelayMs: 1_000, maxDelayMs: 4_000, attemptTimeoutMs: 10_000 };
const flush = () => new Promise((resolve) => setImmediate(resolve));

function harness(
  options: { failPrepare?: () => Error | undefined; holdConsume?: () => Deferred<void> | undefined } = {},
) {
  const clock = new ManualClock();
  const consumers: ScriptedConsumer[] = [];
  const events: [string, ConsumerChange][] = [];
  let prepared = 0;
  const supervisor = new ConsumerSupervisor({
    endpoint: 'billing',
    config,
    clock,
    logger: pino({ level: 'silent' }),
    random: () => 0.5, // no jitter: the delays are the base ones
    emit: (event, change) => events.push([event, change]),
    prepare: async () => {
      prepared++;
      const error = options.failPrepare?.();
      if (error) throw error;
    },
    consume: async ({ paused, onStatus }) => {
      const consumer = new ScriptedConsumer(paused, onStatus);
      consumers.push(consumer);
      const hold = options.holdConsume?.();
      if (hold) await hold.promise;
      return consumer;
    },
  });
  /** Moves the clock and lets the attempt that fell due run. */
  const advance = async (ms: number) => {
    clock.advance(ms);
    await flush();
  };
  return { clock, consumers, events, supervisor, advance, prepared: () => prepared };
}

const stopped = (message: string): ConsumerStatus => ({ kind: 'stopped', error: new Error(message) });

describe('consumer supervisor', () => {
  it('makes a new consumer after one stops on its own, declaring first, with capped doubling waits', async () => {
    let failures = 2;
    const h = harness({ failPrepare: () => (failures-- > 0 ? new Error('broker unreachable') : undefined) });
    await h.supervisor.start();
    expect(h.supervisor.view()).toMatchObject({ state: 'consuming', restarts: 0 });

    h.consumers[0]?.report(stopped('KafkaJSGroupCoordinatorNotFound: Failed to find group coordinator'));
    expect(h.consumers[0]?.calls).toEqual(['close:30000']); // its deliveries may still settle
    expect(h.supervisor.view()).toMatchObject({
      state: 'restarting',
      reason: 'Error: KafkaJSGroupCoordinatorNotFound: Failed to find group coordinator',
      failedAttempts: 0,
      nextAttemptAt: new Date(h.clock.now() + 1_000).toISOString(),
    });
    expect(h.events.map(([e]) => e)).toEqual(['consumer.down']);

    await h.advance(999);
    expect(h.prepared()).toBe(0);
    await h.advance(1); // attempt 1: prepare fails
    expect(h.supervisor.view()).toMatchObject({
      state: 'restarting',
      failedAttempts: 1,
      lastAttemptError: 'Error: broker unreachable',
    });
    await h.advance(2_000); // attempt 2 after 2 s: fails again
    expect(h.supervisor.view()).toMatchObject({ failedAttempts: 2 });
    await h.advance(3_999);
    expect(h.prepared()).toBe(2);
    await h.advance(1); // attempt 3 after 4 s (the cap): succeeds
    expect(h.prepared()).toBe(3);
    expect(h.consumers).toHaveLength(2);
    expect(h.supervisor.view()).toMatchObject({ state: 'consuming', restarts: 1 });
    expect(h.supervisor.view().reason).toBeUndefined();
    expect(h.events.map(([e]) => e)).toEqual(['consumer.down', 'consumer.up']);
    expect(h.events[1]?.[1].downSince).toBe(h.events[0]?.[1].at);
  });

  it('keeps the pause: a consumer made while paused starts paused; a resume during the attempt follows', async () => {
    const hold = createDeferred<void>();
    let holding = false;
    const h = harness({ holdConsume: () => (holding ? hold : undefined) });
    await h.supervisor.start();
    await h.supervisor.pause(); // the kill switch tripped
    expect(h.consumers[0]?.calls).toEqual(['pause']);
    h.consumers[0]?.report(stopped('channel closed'));
    await h.advance(1_000);
    expect(h.consumers[1]?.paused).toBe(true);
    expect(h.supervisor.view()).toMatchObject({ state: 'consuming', paused: true });

    holding = true;
    h.consumers[1]?.report(stopped('channel closed again'));
    await h.advance(1_000); // the attempt is under way, made paused
    expect(h.consumers[2]?.paused).toBe(true);
    await h.supervisor.resume(); // the switch closed meanwhile
    hold.resolve();
    await flush();
    expect(h.consumers[2]?.calls).toEqual(['resume']);
    expect(h.supervisor.view()).toMatchObject({ state: 'consuming', paused: false });
  });

  it('ignores what a replaced consumer reports, and stops restarting once closed', async () => {
    const h = harness();
    await h.supervisor.start();
    const first = h.consumers[0] as ScriptedConsumer;
    first.report(stopped('cancelled by the broker'));
    first.report(stopped('and again'));
    await h.advance(1_000);
    first.report(stopped('late'));
    first.report({ kind: 'reconnecting', error: new Error('late') });
    expect(h.supervisor.view()).toMatchObject({ state: 'consuming', restarts: 1 });

    h.consumers[1]?.report(stopped('gone'));
    await h.supervisor.close({ drainTimeoutMs: 0 });
    await h.advance(60_000);
    expect(h.consumers).toHaveLength(2);
    expect(h.supervisor.view().state).toBe('closed');
    expect(h.clock.pendingTimers).toBe(0);
  });

  it('closes what an attempt still running at close makes', async () => {
    const hold = createDeferred<void>();
    let holding = false;
    const h = harness({ holdConsume: () => (holding ? hold : undefined) });
    await h.supervisor.start();
    holding = true;
    h.consumers[0]?.report(stopped('gone'));
    await h.advance(1_000);
    await h.supervisor.close({ drainTimeoutMs: 0 });
    hold.resolve();
    await flush();
    expect(h.consumers[1]?.calls).toEqual(['close:0']);
  });

  it('gives an attempt up after attemptTimeoutMs and closes the consumer it makes later', async () => {
    const hold = createDeferred<void>();
    let holding = false;
    const h = harness({ holdConsume: () => (holding ? hold : undefined) });
    await h.supervisor.start();
    holding = true;
    h.consumers[0]?.report(stopped('gone'));
    await h.advance(1_000);
    await h.advance(10_000);
    expect(h.supervisor.view()).toMatchObject({
      state: 'restarting',
      failedAttempts: 1,
      lastAttemptError: 'TransportError: consuming again did not succeed within 10000 ms',
    });
    holding = false;
    hold.resolve();
    await flush();
    expect(h.consumers[1]?.calls).toEqual(['close:0']);
    await h.advance(2_000);
    expect(h.supervisor.view()).toMatchObject({ state: 'consuming', restarts: 1 });
  });

  it('counts a consumer that stops while it is being made as a failed attempt', async () => {
    const h = harness();
    await h.supervisor.start();
    const consumers = h.consumers;
    h.consumers[0]?.report(stopped('gone'));
    // The next consumer reports `stopped` before `consume` has returned it.
    const original = consumers.push.bind(consumers);
    consumers.push = (...items: ScriptedConsumer[]) => {
      const n = original(...items);
      if (consumers.length === 2) items[0]?.report(stopped('crashed while joining'));
      return n;
    };
    await h.advance(1_000);
    expect(h.supervisor.view()).toMatchObject({
      state: 'restarting',
      failedAttempts: 1,
      lastAttemptError: 'Error: crashed while joining',
    });
    expect(consumers[1]?.calls).toEqual(['close:30000']);
    await h.advance(2_000);
    expect(h.supervisor.view()).toMatchObject({ state: 'consuming', restarts: 1 });
  });

  it('shows a consumer its client is reconnecting, without making a new one', async () => {
    const h = harness();
    await h.supervisor.start();
    h.consumers[0]?.report({ kind: 'reconnecting', error: new Error('ServiceCommunicationProblem') });
    expect(h.supervisor.view()).toMatchObject({
      state: 'reconnecting',
      reason: 'Error: ServiceCommunicationProblem',
    });
    await h.advance(60_000);
    expect(h.consumers).toHaveLength(1);
    h.consumers[0]?.report({ kind: 'receiving' });
    expect(h.supervisor.view()).toMatchObject({ state: 'consuming', restarts: 0 });
    expect(h.events.map(([e]) => e)).toEqual(['consumer.down', 'consumer.up']);
    // A stop while reconnecting restarts it, and is not a second `down`.
    h.consumers[0]?.report({ kind: 'reconnecting', error: new Error('again') });
    h.consumers[0]?.report(stopped('MessagingEntityNotFound'));
    expect(h.supervisor.view()).toMatchObject({ state: 'restarting', reason: 'Error: MessagingEntityNotFound' });
    expect(h.events.map(([e]) => e)).toEqual(['consumer.down', 'consumer.up', 'consumer.down']);
  });
});

describe('consumer restart backoff', () => {
  it('doubles from the initial delay up to the cap, within ±20 % jitter', () => {
    const c = DEFAULT_CONSUMER_RESTART;
    expect([1, 2, 3, 4, 5, 6, 7, 10].map((n) => consumerRestartDelayMs(n, c, 0.5))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
    ]);
    expect(consumerRestartDelayMs(1, c, 0)).toBe(800);
    expect(consumerRestartDelayMs(1, c, 0.999_999)).toBe(1_200);
    expect(consumerRestartDelayMs(60, c, 0.999_999)).toBe(36_000);
  });
});
