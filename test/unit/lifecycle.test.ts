import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, createMemoryBroker, defineMessage, LifecycleError, memoryTransport } from '../../src/index.js';
import { createDeferred } from '../../src/internal/deferred.js';
import { waitFor } from '../support/wait-for.js';

const Job = defineMessage('test.job.v1', z.object({ n: z.number() }));
const silent = pino({ level: 'silent' });

describe('lifecycle', () => {
  it('lets in-flight work finish on stop, releases what had not started, and loses nothing', async () => {
    const broker = createMemoryBroker();
    const make = () =>
      createBus(
        { shutdown: { signals: [], timeoutMs: 5_000 } },
        { transports: [memoryTransport({ broker })], logger: silent },
      );
    const bus = make();
    const gate = createDeferred<void>();
    const started: number[] = [];
    const finished: number[] = [];
    bus.endpoint('jobs', { concurrency: 2, prefetch: 10 }).handle(Job, async ({ n }) => {
      started.push(n);
      await gate.promise;
      finished.push(n);
    });
    await bus.start();
    for (let n = 0; n < 10; n++) await bus.send('jobs', Job, { n });
    await waitFor(() => started.length === 2);
    const stopping = bus.stop();
    gate.resolve();
    await stopping;
    expect(finished.sort()).toEqual(started.sort());
    expect(bus.health().endpoints.jobs?.counters.completed).toBe(2);

    // A new instance gets the eight that were released or never delivered.
    const next = make();
    const rest: number[] = [];
    next.endpoint('jobs').handle(Job, ({ n }) => {
      rest.push(n);
    });
    await next.start();
    await waitFor(() => rest.length === 8);
    expect([...started, ...rest].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await next.stop();
  });

  it('releases what waits for a slot when the stop begins, even if a slot frees while the consumer pauses', async () => {
    const broker = createMemoryBroker();
    const bus = createBus(
      { shutdown: { signals: [], timeoutMs: 5_000 } },
      { transports: [memoryTransport({ broker })], logger: silent },
    );
    const gate = createDeferred<void>();
    const started: number[] = [];
    // Returns the gate's promise itself: the running message finishes in as few microtasks as a
    // handler can, well before the consumer's pause has come back.
    bus.endpoint('jobs', { concurrency: 1, prefetch: 4 }).handle(Job, ({ n }) => {
      started.push(n);
      return gate.promise;
    });
    await bus.start();
    for (let n = 0; n < 4; n++) await bus.send('jobs', Job, { n });
    await waitFor(() => started.length === 1 && (bus.health().endpoints.jobs?.inFlight ?? 0) === 4);
    const stopping = bus.stop();
    gate.resolve();
    await stopping;
    expect(started).toEqual([0]);
    expect(bus.health().endpoints.jobs?.counters.completed).toBe(1);
  });

  it('aborts the handler signal when the shutdown timeout passes and returns the message', async () => {
    const broker = createMemoryBroker();
    const bus = createBus(
      { shutdown: { signals: [], timeoutMs: 50 } },
      { transports: [memoryTransport({ broker })], logger: silent },
    );
    let aborted = false;
    bus.endpoint('slow').handle(Job, async (_m, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      aborted = true;
    });
    await bus.start();
    await bus.send('slow', Job, { n: 1 });
    await waitFor(() => bus.health().endpoints.slow?.inFlight === 1);
    await bus.stop();
    expect(aborted).toBe(true);
    expect(broker.queue('slow').readyCount).toBe(1);
  });

  it('runs no batch after stop(): messages still gathering for a batch handler go back to the broker', async () => {
    const broker = createMemoryBroker();
    const bus = createBus(
      { shutdown: { signals: [], timeoutMs: 20 } },
      { transports: [memoryTransport({ broker })], logger: silent },
    );
    const batches: number[][] = [];
    bus
      .endpoint('jobs', { concurrency: 10 })
      .handleBatch(Job, async (jobs) => void batches.push(jobs.map((j) => j.n)), { maxMessages: 100, maxWaitMs: 500 });
    await bus.start();
    for (let n = 0; n < 3; n++) await bus.send('jobs', Job, { n });
    await waitFor(() => bus.health().endpoints.jobs?.inFlight === 3);
    await bus.stop();
    expect(broker.queue('jobs').readyCount).toBe(3);
    // Past the batch's wait: its timer must not have outlived stop().
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(batches).toEqual([]);

    const next = createBus(
      { shutdown: { signals: [] } },
      { transports: [memoryTransport({ broker })], logger: silent },
    );
    next
      .endpoint('jobs', { concurrency: 10 })
      .handleBatch(Job, async (jobs) => void batches.push(jobs.map((j) => j.n)), { maxMessages: 100, maxWaitMs: 5 });
    await next.start();
    await waitFor(() => batches.flat().length === 3);
    expect(batches.flat().sort()).toEqual([0, 1, 2]);
    await next.stop();
  });

  it('refuses to register handlers after start and to send before it', async () => {
    const bus = createBus({ shutdown: { signals: [] } }, { logger: silent });
    await expect(bus.send('x', Job, { n: 1 })).rejects.toBeInstanceOf(LifecycleError);
    const endpoint = bus.endpoint('x').handle(Job, () => {});
    await bus.start();
    expect(() => endpoint.handle(defineMessage('other.v1', z.object({})), () => {})).toThrow(LifecycleError);
    await bus.stop();
    await bus.stop();
  });

  it('stops gracefully on SIGTERM and exits 0', async () => {
    const script = fileURLToPath(new URL('./fixtures/sigterm-service.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => {
      out += String(c);
    });
    child.stderr.on('data', (c) => {
      out += String(c);
    });
    await waitFor(() => out.includes('HANDLING'), { timeoutMs: 20_000, what: 'the child to start handling' });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(out).toContain('stopping on signal');
    expect(out).toContain('FINISHED');
    expect(out).toContain('bus stopped');
  }, 30_000);
});
