import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, defineMessage } from '../../../src/index.js';
import { rabbitmqTransport } from '../../../transports/rabbitmq/index.js';
import { deleteTopology, rabbitmqctl } from '../rabbitmq/rabbitmq-test-kit.js';
import { waitFor } from '../../support/wait-for.js';
import { testPool, uniqueTable } from './stores.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';

const Credit = defineMessage('test.credit.v1', z.object({ n: z.number() }));
const script = fileURLToPath(new URL('./fixtures/inbox-consumer.ts', import.meta.url));

interface Child {
  process: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startConsumer(queue: string, inboxTable: string, effectsTable: string, mode: string): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', script, queue, inboxTable, effectsTable, mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c) => {
    out += String(c);
  });
  child.stderr?.on('data', (c) => {
    out += String(c);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { process: child, output: () => out, exited };
}

/** Whether the consumer printed READY; throws with its output if it died before that. */
function started(child: Child): boolean {
  if (child.output().includes('READY')) return true;
  if (child.process.exitCode !== null || child.process.signalCode !== null) {
    throw new Error(`a consumer exited before it was ready:\n${child.output()}`);
  }
  return false;
}

async function queueDepth(queue: string): Promise<{ ready: number; unacked: number }> {
  const out = await rabbitmqctl(
    'list_queues',
    '--quiet',
    '--formatter',
    'json',
    'name',
    'messages_ready',
    'messages_unacknowledged',
  );
  const row = (JSON.parse(out) as { name: string; messages_ready: number; messages_unacknowledged: number }[]).find(
    (r) => r.name === queue,
  );
  return { ready: row?.messages_ready ?? -1, unacked: row?.messages_unacknowledged ?? -1 };
}

describe('inbox over RabbitMQ and PostgreSQL, with real processes', () => {
  const pool = testPool();
  let producer: Bus;
  const children: Child[] = [];
  const queues: string[] = [];

  beforeAll(async () => {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${TEST_SCHEMA}`);
    producer = createBus(
      { service: 'producer', transport: { kind: 'rabbitmq' }, shutdown: { signals: [] } },
      { transports: [rabbitmqTransport()], logger: pino({ level: 'silent' }) },
    );
    await producer.start();
  });
  afterAll(async () => {
    for (const c of children) c.process.kill('SIGKILL');
    await producer.stop();
    await deleteTopology(queues.map((address) => ({ address, endpoint: address, messageTypes: [Credit.type] })));
    await pool.end();
  });

  const setup = async () => {
    const queue = `inbox-crash-${Math.random().toString(36).slice(2, 8)}`;
    const inboxTable = uniqueTable('inbox');
    const effectsTable = uniqueTable('effects');
    queues.push(queue);
    await pool.query(`CREATE TABLE ${TEST_SCHEMA}.${effectsTable} (message_id text NOT NULL)`);
    const effects = async () =>
      (
        await pool.query(
          `SELECT count(*)::int AS n, count(DISTINCT message_id)::int AS d FROM ${TEST_SCHEMA}.${effectsTable}`,
        )
      ).rows[0] as {
        n: number;
        d: number;
      };
    return { queue, inboxTable, effectsTable, effects };
  };

  it('a consumer killed between commit and settle leaves exactly one effect, and the redelivery completes as a duplicate', async () => {
    const { queue, inboxTable, effectsTable, effects } = await setup();
    const doomed = startConsumer(queue, inboxTable, effectsTable, 'kill-after-commit');
    children.push(doomed);
    await waitFor(() => started(doomed), {
      timeoutMs: 30_000,
      what: () => `the first consumer: ${doomed.output()}`,
    });
    await producer.send(queue, Credit, { n: 1 }, { id: 'credit-1' });
    expect((await doomed.exited).signal).toBe('SIGKILL');
    expect(await effects()).toEqual({ n: 1, d: 1 });

    const heir = startConsumer(queue, inboxTable, effectsTable, 'normal');
    children.push(heir);
    await waitFor(() => heir.output().includes('"reason":"duplicate"'), {
      timeoutMs: 30_000,
      what: 'the duplicate skip',
    });
    // rabbitmqctl starts an Erlang VM per call (seconds on a loaded box): a generous deadline.
    await waitFor(
      async () => {
        const d = await queueDepth(queue);
        return d.ready === 0 && d.unacked === 0;
      },
      { timeoutMs: 60_000, what: 'the queue to drain' },
    );
    expect(await effects()).toEqual({ n: 1, d: 1 });
    heir.process.kill('SIGTERM');
    await heir.exited;
  }, 90_000);

  it('two consumer processes, 5,000 messages with injected redeliveries: every effect exactly once', async () => {
    const { queue, inboxTable, effectsTable, effects } = await setup();
    const a = startConsumer(queue, inboxTable, effectsTable, 'inject-redeliveries');
    const b = startConsumer(queue, inboxTable, effectsTable, 'inject-redeliveries');
    children.push(a, b);
    await waitFor(() => started(a) && started(b), {
      timeoutMs: 30_000,
      what: () => `both consumers to start:\n--- a ---\n${a.output()}\n--- b ---\n${b.output()}`,
    });
    const total = 5_000;
    for (let i = 0; i < total; i++) await producer.send(queue, Credit, { n: i }, { id: `c-${i}` });
    await waitFor(async () => (await effects()).d === total, { timeoutMs: 120_000, what: 'all effects' });
    await waitFor(
      async () => {
        const d = await queueDepth(queue);
        return d.ready === 0 && d.unacked === 0;
      },
      { timeoutMs: 60_000, what: 'the queue to drain' },
    );
    expect(await effects()).toEqual({ n: total, d: total });
    const duplicates =
      (a.output().match(/"reason":"duplicate"/g)?.length ?? 0) +
      (b.output().match(/"reason":"duplicate"/g)?.length ?? 0);
    expect(duplicates).toBeGreaterThan(100);
    a.process.kill('SIGTERM');
    b.process.kill('SIGTERM');
    await Promise.all([a.exited, b.exited]);
  }, 240_000);
});
