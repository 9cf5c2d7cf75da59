import { type ChildProcess, spawn } from 'node:child_process';
import { runSluice, type SluiceRun } from './fixtures/run-sluice.js';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudEventsCodec, createEnvelope } from '../../../src/index.js';
import { createFault, faultToHeaders } from '../../../src/errors/fault.js';
import { waitFor } from '../../support/wait-for.js';
import { deleteTopology, RABBITMQ_URL } from '../rabbitmq/rabbitmq-test-kit.js';

const ADMIN = `admin-${randomUUID()}`;
const READ = `read-${randomUUID()}`;
const ENDPOINT = `console-cli-${randomUUID().slice(0, 8)}`;
const SEEDED = 10_000;

/** Runs `sluice` as a user would (a process of its own), pointed at the service. */
function sluice(args: string[], env: Record<string, string | undefined> = {}): Promise<SluiceRun> {
  return runSluice(args, { SLUICE_URL: url, SLUICE_ADMIN_TOKEN: ADMIN, ...env });
}

let service: ChildProcess;
let serviceLog = '';
let url = '';
let connection: amqp.ChannelModel;

/** A valid envelope of the service's contract. */
function envelope(order: number, fail: boolean) {
  return createEnvelope('console.order.v1', 'console-test', { order, fail }, { key: `order-${order}` });
}

/** Puts dead letters straight on the endpoint's dead-letter queue, as earlier failures left them. */
async function seedDeadLetters(count: number): Promise<void> {
  const channel = await connection.createConfirmChannel();
  const now = new Date();
  for (let start = 0; start < count; start += 500) {
    for (let i = start; i < Math.min(count, start + 500); i++) {
      const e = envelope(100_000 + i, false);
      const fault = createFault({
        reason: 'retries-exhausted',
        description: `inventory service timed out after ${1000 + (i % 7)} ms`,
        error: new Error(`inventory service timed out after ${1000 + (i % 7)} ms (request ${randomUUID()})`),
        attempts: 5,
        endpoint: ENDPOINT,
        originalAddress: ENDPOINT,
        now,
        messageId: e.id,
        messageType: e.type,
      });
      channel.sendToQueue(`${ENDPOINT}.dlq`, cloudEventsCodec.encode(e), {
        persistent: true,
        messageId: e.id,
        headers: { ...faultToHeaders(fault), 'sluice-dead-letter-id': `seed-${i}` },
      });
    }
    await channel.waitForConfirms();
  }
  await channel.close();
}

async function deadLetterCount(): Promise<number> {
  const channel = await connection.createChannel();
  try {
    return (await channel.checkQueue(`${ENDPOINT}.dlq`)).messageCount;
  } finally {
    await channel.close();
  }
}

describe('the sluice command against a service on RabbitMQ', () => {
  beforeAll(async () => {
    service = spawn(process.execPath, ['--import', 'tsx', 'test/integration/console/fixtures/console-service.ts'], {
      env: { ...process.env, ADMIN_TOKEN: ADMIN, READ_TOKEN: READ, ENDPOINT, RABBITMQ_URL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The service's log is kept for a failure's message, not printed into the test run's output.
    service.stderr?.on('data', (d) => {
      serviceLog = `${serviceLog}${d}`.slice(-20_000);
    });
    const lines = createInterface({ input: service.stdout as NodeJS.ReadableStream });
    url = await new Promise<string>((resolve, reject) => {
      service.once('exit', (code) => reject(new Error(`the service exited with ${code}:\n${serviceLog}`)));
      lines.once('line', (line) => resolve(`${(JSON.parse(line) as { url: string }).url}/health`));
    });
    connection = await amqp.connect(RABBITMQ_URL);
    // Three fail in the service itself; ten thousand are waiting from an earlier incident.
    const channel = await connection.createConfirmChannel();
    for (const order of [1, 2, 3]) {
      const e = envelope(order, true);
      channel.sendToQueue(ENDPOINT, cloudEventsCodec.encode(e), { persistent: true, messageId: e.id });
    }
    await channel.waitForConfirms();
    await channel.close();
    await waitFor(async () => (await deadLetterCount()) === 3, { timeoutMs: 20_000, what: '3 dead letters' });
    await seedDeadLetters(SEEDED);
  }, 120_000);

  afterAll(async () => {
    service?.kill('SIGTERM');
    await connection?.close().catch(() => {});
    await deleteTopology([{ address: ENDPOINT, endpoint: ENDPOINT, messageTypes: ['console.order.v1'] }]);
  });

  it('answers --help for every command, with the exit codes', async () => {
    const top = await sluice(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('dlq');
    expect(top.stdout).toContain('4 unauthorized');
    for (const command of [['dlq', 'redrive'], ['dlq', 'purge'], ['killswitch', 'trip'], ['endpoints'], ['job']]) {
      const help = await sluice([...command, '--help']);
      expect(help.code, command.join(' ')).toBe(0);
      expect(help.stdout).toContain('Usage: sluice');
    }
    expect((await sluice(['dlq', 'frobnicate'])).code).toBe(2);
  });

  it('lists endpoints and groups the dead letters by failure', async () => {
    const list = await sluice(['endpoints'], { SLUICE_ADMIN_TOKEN: undefined, SLUICE_READ_TOKEN: READ });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(ENDPOINT);
    expect(list.stdout).toContain(String(SEEDED + 3));
    const json = JSON.parse((await sluice(['--json', 'endpoints'])).stdout);
    expect(json.endpoints[0]).toMatchObject({
      name: ENDPOINT,
      killSwitch: { state: 'closed' },
      deadLetters: { count: SEEDED + 3 },
    });
    const stats = JSON.parse((await sluice(['dlq', 'stats', ENDPOINT, '--json'])).stdout);
    expect(stats).toMatchObject({
      matched: SEEDED + 3,
      reasons: [
        { reason: 'retries-exhausted', count: SEEDED },
        { reason: 'permanent-failure', count: 3 },
      ],
    });
    expect(stats.groups.map((g: { text: string; count: number }) => [g.text, g.count])).toEqual([
      ['inventory service timed out after <n> ms (request <uuid>)', SEEDED],
      ['order <n> was rejected by the warehouse', 3],
    ]);
    const table = await sluice(['dlq', 'stats', ENDPOINT]);
    expect(table.stdout).toContain('order <n> was rejected by the warehouse');
    const page = await sluice(['dlq', 'list', ENDPOINT, '--reason', 'permanent-failure']);
    expect(page.code).toBe(0);
    expect(page.stdout).toContain('PermanentError');
    const id = JSON.parse((await sluice(['dlq', 'list', ENDPOINT, '--reason', 'permanent-failure', '--json'])).stdout)
      .items[0].id;
    const shown = await sluice(['dlq', 'show', ENDPOINT, id]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('"fail": true');
    expect(shown.stdout).toContain('sluice-fault-reason');
  }, 60_000);

  it('trips and resets a kill switch', async () => {
    const trip = await sluice(['killswitch', 'trip', ENDPOINT, '--reason', 'warehouse maintenance']);
    expect(trip.code, trip.stderr).toBe(0);
    expect(trip.stdout).toContain('tripped');
    expect((await sluice(['killswitch', 'reset', '--all'])).stdout).toContain('closed');
    expect((await sluice(['killswitch', 'trip', ENDPOINT])).code).toBe(2); // --reason is required
  });

  it('refuses with meaningful exit codes', async () => {
    expect((await sluice(['endpoints'], { SLUICE_ADMIN_TOKEN: undefined })).code).toBe(4);
    const wrong = await sluice(['endpoints'], { SLUICE_ADMIN_TOKEN: 'not-the-token-0123456789' });
    expect(wrong.code).toBe(4);
    const readOnly = await sluice(['killswitch', 'reset', ENDPOINT], {
      SLUICE_ADMIN_TOKEN: undefined,
      SLUICE_READ_TOKEN: READ,
    });
    expect(readOnly.code).toBe(4);
    expect((await sluice(['dlq', 'stats', 'no-such-endpoint'])).code).toBe(3);
    expect((await sluice(['endpoints'], { SLUICE_URL: 'http://127.0.0.1:1/health' })).code).toBe(6);
    expect((await sluice(['endpoints'], { SLUICE_URL: undefined })).code).toBe(2);
    const noTerminal = await sluice(['dlq', 'purge', ENDPOINT, '--all']);
    expect(noTerminal.code).toBe(2);
    expect(noTerminal.stderr).toContain('refusing to ask: stdin is not a terminal; pass --yes');
    for (const run of [wrong, readOnly, noTerminal]) expect(run.stdout + run.stderr).not.toContain(ADMIN);
  });

  it(`redrives a group of ${SEEDED} dead letters in two batches with progress, then purges the rest`, async () => {
    const group = JSON.parse(
      (await sluice(['dlq', 'stats', ENDPOINT, '--reason', 'retries-exhausted', '--json'])).stdout,
    ).groups[0].id as string;
    // A first batch, to see the fix hold, then the rest.
    const batch = await sluice([
      'dlq',
      'redrive',
      ENDPOINT,
      '--group',
      group,
      '--max',
      '1000',
      '-m',
      'first batch',
      '--yes',
    ]);
    expect(batch.code, batch.stderr).toBe(0);
    expect(batch.stdout).toContain('redrive succeeded: 1000 of 1000 moved');
    const redrive = await sluice([
      'dlq',
      'redrive',
      ENDPOINT,
      '--group',
      group,
      '-m',
      'inventory fixed, INC-42',
      '--yes',
    ]);
    expect(redrive.code, redrive.stderr).toBe(0);
    const rest = SEEDED - 1_000;
    expect(redrive.stdout).toContain(`redrive succeeded: ${rest} of ${rest} moved`);
    // The bar, as a process without a terminal prints it: a line every half second, rising.
    const progress = [...redrive.stderr.matchAll(/redrive \S+ \[[^\]]*\] (\d+)\/(\d+)/g)].map((m) => Number(m[1]));
    expect(progress.length).toBeGreaterThan(0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.at(-1)).toBe(rest);
    // The service handles what came back (those messages do not fail); the three others stay.
    await waitFor(async () => (await deadLetterCount()) === 3, { timeoutMs: 60_000, what: 'redriven' });
    await waitFor(
      async () => {
        const json = JSON.parse((await sluice(['--json', 'endpoints'])).stdout);
        return json.endpoints[0].counters.completed >= SEEDED;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the redriven messages handled' },
    );
    const purge = await sluice([
      'dlq',
      'purge',
      ENDPOINT,
      '--reason',
      'permanent-failure',
      '--yes',
      '-m',
      'bad test data',
    ]);
    expect(purge.code, purge.stderr).toBe(0);
    expect(purge.stdout).toContain('purge succeeded: 3 of 3 removed');
    expect(await deadLetterCount()).toBe(0);
    const jobs = JSON.parse((await sluice(['--json', 'job'])).stdout).jobs;
    expect(jobs.map((j: { kind: string; state: string }) => [j.kind, j.state])).toEqual([
      ['purge', 'succeeded'],
      ['redrive', 'succeeded'],
      ['redrive', 'succeeded'],
    ]);
  }, 180_000);
});
