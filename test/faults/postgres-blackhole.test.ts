import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait-for.js';
import { FaultBench } from './fault-bench.js';

/**
 * The inbox database stops answering (issue 19's fault suite): a TCP proxy in front of a private
 * server stops forwarding without closing anything, as a network that drops packets does. Every
 * wait must end (statement, connect and pool timeouts), the kill switch must trip, a manual reset
 * while the database is still silent must let nothing through to the dead-letter queue, and once
 * the database answers again every message is applied exactly once.
 */
describe('fault: the inbox database stops answering', () => {
  let bench: FaultBench | undefined;
  afterEach(async () => {
    await bench?.close();
    bench = undefined;
  });

  it('memory transport: black-holed for 8 s, with a manual reset while it is', async () => {
    bench = await FaultBench.start({
      transport: { kind: 'memory' },
      proxy: true,
      inbox: { statementTimeoutMs: 1_000, connectTimeoutMs: 1_000 },
    });
    const proxy = bench.proxy;
    if (!proxy) throw new Error('no proxy');
    const total = 2_000;
    await bench.bus.start();
    const producing = bench.produce(0, total);
    await waitFor(() => (bench?.settled() ?? 0) >= 300, { timeoutMs: 30_000, what: 'load' });

    const from = Date.now();
    proxy.blackhole();
    await waitFor(() => (bench?.trips(from).length ?? 0) > 0, { timeoutMs: 15_000, what: 'the kill switch to trip' });
    const ks = bench.bus.killSwitch(bench.endpoint);
    ks.reset('operator: is the database back?');
    // Still silent: the first failure after the reset trips it again.
    await waitFor(() => (bench?.trips(from).length ?? 0) > 1, { timeoutMs: 15_000, what: 'the trip after the reset' });
    expect(await bench.bus.deadLetters(bench.endpoint).count()).toBeLessThanOrEqual(total / bench.poisonEvery);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 8_000 - (Date.now() - from))));
    const to = Date.now();
    proxy.restore();

    await producing;
    await bench.waitForAll(total);
    await bench.expectEveryMessageOnce(total);
    expect(bench.trips(from, to).length).toBeGreaterThanOrEqual(2);
    expect(bench.changes.some((c) => c.name === 'killswitch.reset' && c.at >= from && c.at <= to)).toBe(true);
  }, 120_000);
});
