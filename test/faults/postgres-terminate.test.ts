import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait-for.js';
import { APPLICATION_NAME, FaultBench } from './fault-bench.js';

/**
 * `pg_terminate_backend` of the inbox's connections, again and again under load (issue 19's
 * fault suite), on a private server: connections die while checked out (in a handler, in a
 * commit) and while idle in the pool. Nothing may crash the process, lose or double a message, or
 * be dead-lettered for it.
 */
describe('fault: the inbox connections are terminated under load', () => {
  let bench: FaultBench | undefined;
  afterEach(async () => {
    await bench?.close();
    bench = undefined;
  });

  it('memory transport: ten rounds of pg_terminate_backend, 300 ms apart', async () => {
    // One dependency failure trips the switch here: whether a success slips in between two
    // terminated transactions depends on timing, and the suite asserts the trip.
    bench = await FaultBench.start({
      transport: { kind: 'memory' },
      endpoint: { killSwitch: { dependencyFailures: 1 } },
    });
    const total = 3_000;
    await bench.bus.start();
    const producing = bench.produce(0, total);
    await waitFor(() => (bench?.settled() ?? 0) >= 300, { timeoutMs: 30_000, what: 'load' });

    const from = Date.now();
    let terminated = 0;
    for (let round = 0; round < 10; round++) {
      terminated += await bench.pg.terminate(APPLICATION_NAME);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const to = Date.now();
    expect(terminated).toBeGreaterThan(0);
    await producing;
    await bench.waitForAll(total);
    await bench.expectEveryMessageOnce(total);
    expect(bench.counters.dependencyFailures).toBeGreaterThan(0);
    expect(bench.trips(from, to).length).toBeGreaterThan(0);
  }, 120_000);
});
