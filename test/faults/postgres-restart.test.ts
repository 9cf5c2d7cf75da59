import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait-for.js';
import { FaultBench } from './fault-bench.js';

/**
 * PostgreSQL stopped and started again under load (issue 19's fault suite), on a private server:
 * a 15 s outage must trip the kill switch, and cost no message, no double effect, no dead letter.
 */
describe('fault: the inbox database stops and starts again under load', () => {
  let bench: FaultBench | undefined;
  afterEach(async () => {
    await bench?.close();
    bench = undefined;
  });

  it('memory transport: a clean stop (sessions ended) for 15 s', async () => {
    bench = await FaultBench.start({ transport: { kind: 'memory' } });
    const total = 3_000;
    await bench.bus.start();
    const producing = bench.produce(0, total);
    await waitFor(() => (bench?.settled() ?? 0) >= 500, { timeoutMs: 30_000, what: 'load' });

    const down = Date.now();
    await bench.pg.stop('fast');
    await waitFor(() => (bench?.trips(down).length ?? 0) > 0, { timeoutMs: 15_000, what: 'the kill switch to trip' });
    await new Promise((resolve) => setTimeout(resolve, 15_000 - (Date.now() - down)));
    const up = Date.now();
    await bench.pg.start();

    await producing;
    await bench.waitForAll(total);
    const { applied } = await bench.expectEveryMessageOnce(total);
    expect(applied).toBeGreaterThan(total - total / bench.poisonEvery - 1);
    expect(bench.trips(down, up)[0]?.change.reason).toMatch(/dependency failure.*inbox \(postgres\)/);
    expect(bench.bus.killSwitch(bench.endpoint).state).toBe('closed');
  }, 120_000);

  it('RabbitMQ transport: a crash (immediate stop) for 5 s', async () => {
    bench = await FaultBench.start({ transport: { kind: 'rabbitmq' } });
    const total = 1_500;
    await bench.bus.start();
    // Published on while the database is down: the broker keeps them, the consumer waits.
    const producing = bench.produce(0, total);
    await waitFor(() => (bench?.settled() ?? 0) >= 300, { timeoutMs: 30_000, what: 'load' });

    const down = Date.now();
    await bench.pg.stop('immediate');
    await waitFor(() => (bench?.trips(down).length ?? 0) > 0, { timeoutMs: 15_000, what: 'the kill switch to trip' });
    await new Promise((resolve) => setTimeout(resolve, 5_000 - (Date.now() - down)));
    await bench.pg.start();

    await producing;
    await bench.waitForAll(total);
    await bench.expectEveryMessageOnce(total);
  }, 120_000);
});
