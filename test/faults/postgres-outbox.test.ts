import { afterEach, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/index.js';
import { waitFor } from '../support/wait-for.js';
import { APPLICATION_NAME, FaultBench, type FaultBenchOptions } from './fault-bench.js';
import { expectEveryEventOnce, waitForEvents } from './outbox-sink.js';

/**
 * The inbox's (and so the outbox's) PostgreSQL fails while handlers publish through the outbox
 * (issue 13's outbox in issue 19's fault suite), on a private server: each credit writes its effect
 * row, counts itself in its key and publishes one keyed event (`ctx.publish`), which a sink endpoint
 * downstream records as the broker delivers it. The database goes away under load — black-holed
 * through the TCP proxy, crashed and restarted, its connections terminated — while rows are being
 * written, dispatched, marked and claimed. At the end every credit is applied once (or dead-lettered
 * as poison, with its first attempt: the outage spent none), every applied credit's event reached
 * the sink (first copies in commit order per key; copies of one id more than once are allowed: at
 * least once), the outbox is empty, the kill switch tripped during the outage and is closed again,
 * and `bus.stop()` returns.
 */
const OUTBOX = {
  leaseMs: 4_000,
  dispatchTimeoutMs: 2_000,
  backupPollIntervalMs: 1_000,
  statsIntervalMs: 1_000,
  retryDelayMs: { initial: 200, factor: 2, max: 2_000 },
};
/** Statements and connections give up on a silent database within seconds. */
const TIMEOUTS = { statementTimeoutMs: 1_000, connectTimeoutMs: 1_000 };

describe('fault: the inbox/outbox database fails while handlers publish through the outbox', () => {
  let bench: FaultBench | undefined;
  afterEach(async () => {
    await bench?.close();
    bench = undefined;
  }, 60_000);

  /**
   * Starts the bench and the load; once events flow downstream, runs `fault` (which returns when
   * the database is back); then waits for every credit and event and counts them all.
   */
  async function underLoad(
    what: string,
    options: FaultBenchOptions,
    total: number,
    fault: (b: FaultBench) => Promise<void>,
  ): Promise<void> {
    bench = await FaultBench.start({ ...options, outbox: { ...OUTBOX, ...options.outbox } });
    const b = bench;
    await b.bus.start();
    const producing = b.produce(0, total);
    await waitFor(() => b.settled() >= 300 && (b.sink?.distinct() ?? 0) >= 200, {
      timeoutMs: 30_000,
      what: 'load, and events downstream',
    });
    const from = Date.now();
    await fault(b);
    const to = Date.now();

    await producing;
    await b.waitForAll(total);
    await b.expectEveryMessageOnce(total);
    await waitForEvents(b);
    const { events, duplicates } = await expectEveryEventOnce(b, total);
    // The outage's failures were dependency failures: no attempt spent, nothing retried by the policy.
    expect(b.counters.retried).toBe(0);
    const dead = await b.deadLetters();
    expect(dead.filter((d) => d.fault?.attempts !== 1).map((d) => d.fault)).toEqual([]);
    expect(b.counters.dependencyFailures).toBeGreaterThan(0);
    expect(b.trips(from, to).length).toBeGreaterThan(0);
    await waitFor(() => b.bus.killSwitch(b.endpoint).state === 'closed', {
      timeoutMs: 15_000,
      what: 'the kill switch to close',
    });
    expect(await stops(b.bus)).toBe('stopped');
    console.info(
      `${what}: ${events} events downstream (${duplicates} copies delivered again), ` +
        `${b.counters.dependencyFailures} dependency failures, ${b.trips(from, to).length} trips, ` +
        `${b.counters.skippedByReason.duplicate ?? 0} redeliveries skipped as duplicates, ` +
        `${dead.length} dead letters (poison)`,
    );
  }

  /**
   * Black-holes the proxy until the switch trips and `ms` have passed; then lets packets through
   * again. `lateDelivery`: what the consumer sent on a connection it then gave up (a COMMIT whose
   * reply never came) reaches the server then: transactions it counted as failed commit after all.
   */
  const blackhole =
    (ms: number, lateDelivery = false) =>
    async (b: FaultBench) => {
      const proxy = b.proxy;
      if (!proxy) throw new Error('no proxy');
      const from = Date.now();
      proxy.blackhole({ lateDelivery });
      await waitFor(() => b.trips(from).length > 0, { timeoutMs: 15_000, what: 'the kill switch to trip' });
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - (Date.now() - from))));
      proxy.restore();
    };

  it('RabbitMQ transport: black-holed for 8 s', async () => {
    await underLoad(
      'outbox, rabbitmq, black-holed',
      { transport: { kind: 'rabbitmq' }, proxy: true, inbox: TIMEOUTS },
      1_500,
      blackhole(8_000),
    );
  }, 180_000);

  it('RabbitMQ transport: a crash (immediate stop) for 5 s, restarted', async () => {
    await underLoad(
      'outbox, rabbitmq, crash',
      { transport: { kind: 'rabbitmq' }, inbox: TIMEOUTS },
      1_500,
      async (b) => {
        const down = Date.now();
        await b.pg.stop('immediate');
        await waitFor(() => b.trips(down).length > 0, { timeoutMs: 15_000, what: 'the kill switch to trip' });
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 5_000 - (Date.now() - down))));
        await b.pg.start();
      },
    );
  }, 180_000);

  it('memory transport: black-holed for 4 s, what was sent before giving up delivered late', async () => {
    // The default lease (10 s), longer than the outage: a row whose COMMIT landed late is still
    // leased to this process when the traffic comes back, and the next rows of its key, written
    // leased behind it, must not go out in process before it (the relay sends it, then them).
    await underLoad(
      'outbox, memory, black-holed, late delivery',
      {
        transport: { kind: 'memory' },
        proxy: true,
        inbox: TIMEOUTS,
        outbox: { leaseMs: 10_000, dispatchTimeoutMs: 5_000 },
      },
      2_000,
      blackhole(4_000, true),
    );
  }, 180_000);

  it('memory transport: ten rounds of pg_terminate_backend, 300 ms apart', async () => {
    await underLoad(
      'outbox, memory, terminated',
      // One dependency failure trips the switch here (see postgres-terminate.test.ts).
      { transport: { kind: 'memory' }, inbox: TIMEOUTS, endpoint: { killSwitch: { dependencyFailures: 1 } } },
      2_000,
      async (b) => {
        let terminated = 0;
        for (let round = 0; round < 10; round++) {
          terminated += await b.pg.terminate(APPLICATION_NAME);
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
        expect(terminated).toBeGreaterThan(0);
      },
    );
  }, 180_000);
});

/** `bus.stop()`, bounded: 'stopped' once it returned, 'hangs' if it has not within 30 s. */
async function stops(bus: Bus<unknown>): Promise<'stopped' | 'hangs'> {
  let timer: NodeJS.Timeout | undefined;
  const hangs = new Promise<'hangs'>((resolve) => {
    timer = setTimeout(() => resolve('hangs'), 30_000);
  });
  try {
    return await Promise.race([bus.stop().then(() => 'stopped' as const), hangs]);
  } finally {
    clearTimeout(timer);
  }
}
