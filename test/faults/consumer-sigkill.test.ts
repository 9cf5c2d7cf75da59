import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait-for.js';
import { FaultBench } from './fault-bench.js';

/**
 * The consumer process SIGKILLed under load at random points, several times, and started again
 * (issue 19's fault suite). The consumer runs in a child process (`fixtures/fault-consumer-process.ts`)
 * on the shared RabbitMQ node and the shared PostgreSQL server (nothing is done to either: the
 * fault is the process), with its PostgreSQL inbox; this process only sends and counts.
 *
 * The kill switch must NOT trip here: a killed process fails no handler. What it had in flight is
 * either committed (the broker redelivers it unacknowledged, and the next process skips it as a
 * duplicate) or not (the transaction died with the connection, and the next process applies it).
 * A poison message killed between its dead letter and its acknowledgement would be dead-lettered
 * twice: the count at the end would show it.
 */
const CHILD = fileURLToPath(new URL('./fixtures/fault-consumer-process.ts', import.meta.url));
const KILLS = 8;

interface Consumer {
  readonly process: ChildProcess;
  output(): string;
  readonly exited: Promise<void>;
}

describe('fault: the consumer process is SIGKILLed and restarted under load', () => {
  let bench: FaultBench | undefined;
  const children: Consumer[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL');
      await c.exited;
    }
    await bench?.close();
    bench = undefined;
  }, 60_000);

  function startConsumer(b: FaultBench): Consumer {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(b.consumerOptions())], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (chunk) => {
      out += String(chunk);
    });
    child.stderr?.on('data', (chunk) => {
      out += String(chunk);
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const consumer = { process: child, output: () => out, exited };
    children.push(consumer);
    return consumer;
  }

  async function ready(c: Consumer): Promise<void> {
    await waitFor(
      () => {
        if (c.output().includes('READY')) return true;
        if (c.process.exitCode !== null) throw new Error(`the consumer exited before it was ready:\n${c.output()}`);
        return false;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: () => `the consumer to start:\n${c.output()}` },
    );
  }

  it(`${KILLS} kills at random points: nothing lost, nothing applied twice, only poison dead-lettered`, async () => {
    bench = await FaultBench.start({ transport: { kind: 'rabbitmq' }, database: 'shared', consume: false });
    const b = bench;
    await b.bus.start();
    const total = 5_000;
    let consumer = startConsumer(b);
    // The consumer declares the queue: sending before that would route to nowhere.
    await ready(consumer);
    const producing = b.produce(0, total);

    const killedAt: number[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      // A random point: somewhere after another 100 to 400 messages were applied.
      const target = (await b.applied()) + 100 + Math.floor(Math.random() * 300);
      await waitFor(async () => (await b.applied()) >= target, {
        timeoutMs: 60_000,
        intervalMs: 20,
        what: () => `${target} applied; consumer output:\n${consumer.output().slice(-2_000)}`,
      });
      consumer.process.kill('SIGKILL');
      await consumer.exited;
      killedAt.push(await b.applied());
      consumer = startConsumer(b);
      await ready(consumer);
    }

    await producing;
    await b.waitForAll(total);
    const { dead, deadTwice } = await b.expectEveryMessageOnce(total);
    expect(killedAt).toHaveLength(KILLS);
    expect(killedAt.at(-1)).toBeLessThan(total);
    // No process's kill switch tripped (see above).
    const outputs = children.map((c) => c.output()).join('\n');
    expect(outputs).not.toMatch(/killswitch killswitch\.tripped/);
    console.info(
      `consumer SIGKILL: killed with ${killedAt.join(', ')} of ${total} applied; ` +
        `${dead.length} dead letters (poison; ${deadTwice.length} dead-lettered twice)`,
    );

    consumer.process.kill('SIGTERM');
    await consumer.exited;
  }, 120_000);
});
