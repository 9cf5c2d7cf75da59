import { type ChildProcess, spawn } from 'node:child_process';
import { runSluice, type SluiceRun } from './fixtures/run-sluice.js';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudEventsCodec, createEnvelope } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { deleteTopology, RABBITMQ_URL } from '../rabbitmq/rabbitmq-test-kit.js';

const ADMIN = `admin-${randomUUID()}`;
const READ = `read-${randomUUID()}`;
const ENDPOINT = `console-explain-${randomUUID().slice(0, 8)}`;
const KEY = `order-7 \u001b[31m<b>red</b>`;
const at = (s: number) => `2026-11-30T10:00:0${s}Z`;

let service: ChildProcess;
let serviceLog = '';
let url = '';
let connection: amqp.ChannelModel;

/** Runs `sluice` as a user would (a process of its own), pointed at the service. */
function sluice(args: string[], env: Record<string, string | undefined> = {}): Promise<SluiceRun> {
  return runSluice(args, { SLUICE_URL: url, SLUICE_READ_TOKEN: READ, ...env });
}

/** Sends one order of the service's contract (`fail: true`: the warehouse rejects it, a dead letter). */
async function order(id: string, s: number, fail: boolean): Promise<void> {
  const channel = await connection.createConfirmChannel();
  const e = createEnvelope('console.order.v1', 'console-test', { order: s, fail }, { id, key: KEY, occurredAt: at(s) });
  channel.sendToQueue(ENDPOINT, cloudEventsCodec.encode(e), { persistent: true, messageId: id });
  await channel.waitForConfirms();
  await channel.close();
}

describe('sluice explain against a service on RabbitMQ with a SQLite inbox', () => {
  beforeAll(async () => {
    const inboxPath = join(mkdtempSync(join(tmpdir(), 'sluice-explain-')), 'inbox.db');
    service = spawn(process.execPath, ['--import', 'tsx', 'test/integration/console/fixtures/console-service.ts'], {
      env: { ...process.env, ADMIN_TOKEN: ADMIN, READ_TOKEN: READ, ENDPOINT, RABBITMQ_URL, INBOX_PATH: inboxPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    service.stderr?.on('data', (d) => {
      serviceLog = `${serviceLog}${d}`.slice(-20_000);
    });
    const lines = createInterface({ input: service.stdout as NodeJS.ReadableStream });
    url = await new Promise<string>((resolve, reject) => {
      service.once('exit', (code) => reject(new Error(`the service exited with ${code}:\n${serviceLog}`)));
      lines.once('line', (line) => resolve(`${(JSON.parse(line) as { url: string }).url}/health`));
    });
    connection = await amqp.connect(RABBITMQ_URL);
    // One after another, so that the timeline's order is the sending order.
    const steps: [string, number, boolean][] = [
      ['o-1', 1, false],
      ['o-3', 3, false],
      ['o-2', 2, false],
      ['o-3', 3, false],
      ['o-4', 4, true],
    ];
    for (const [i, [id, s, fail]] of steps.entries()) {
      await order(id, s, fail);
      const explained = async () => {
        const run = await sluice(['explain', KEY, '--json']);
        return run.code === 0 ? (JSON.parse(run.stdout) as { entries: unknown[] }).entries.length : 0;
      };
      await waitFor(async () => (await explained()) === i + 1, { timeoutMs: 20_000, what: `entry ${i + 1}` });
    }
  }, 120_000);

  afterAll(async () => {
    service?.kill('SIGTERM');
    await connection?.close().catch(() => {});
    await deleteTopology([{ address: ENDPOINT, endpoint: ENDPOINT, messageTypes: ['console.order.v1'] }]);
  });

  it("prints the key's timeline as JSON for scripts", async () => {
    const run = await sluice(['explain', KEY, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const answer = JSON.parse(run.stdout);
    expect(answer.key).toBe(KEY);
    expect(answer.guard).toEqual([
      { endpoint: ENDPOINT, history: true, lastApplied: { occurredAt: at(3), messageId: 'o-3', tombstone: false } },
    ]);
    expect(answer.entries.map((e: { messageId: string; outcome: string }) => [e.messageId, e.outcome])).toEqual([
      ['o-1', 'applied'],
      ['o-3', 'applied'],
      ['o-2', 'stale'],
      ['o-3', 'duplicate'],
      ['o-4', 'dead-lettered'],
    ]);
    expect(answer.entries[4]).toMatchObject({
      reason: 'permanent-failure',
      inDeadLetterQueue: true,
      hint: 'o-4 is dead-lettered: permanent-failure; redrive it to continue',
    });
  });

  it('prints a table with the reasons in plain words, control characters made visible', async () => {
    const run = await sluice(['explain', KEY]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('key order-7 \\x1b[31m<b>red</b>');
    expect(run.stdout).not.toContain('\u001b[31m');
    expect(run.stdout).toContain(`${ENDPOINT}: at ${at(3)} by message o-3`);
    // The table wraps long cells: compare without the layout.
    const flat = run.stdout.replace(/[│┌┐└┘├┤┬┴┼─\s]+/g, ' ');
    expect(flat).toContain(`skipped: stale — occurred ${at(2)}, key already at ${at(3)} from message o-3`);
    expect(flat).toContain('skipped: duplicate — message o-3 was processed');
    expect(run.stdout).toContain('hint: o-4 is dead-lettered: permanent-failure; redrive it to continue');
    const limited = JSON.parse((await sluice(['explain', KEY, '--limit', '2', '--json'])).stdout);
    expect(limited.entries.map((e: { messageId: string }) => e.messageId)).toEqual(['o-3', 'o-4']);
  });

  it('explains one message: where it went', async () => {
    const run = await sluice(['explain', '--message', 'o-3', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(
      JSON.parse(run.stdout).entries.map((e: { endpoint: string; outcome: string }) => [e.endpoint, e.outcome]),
    ).toEqual([
      [ENDPOINT, 'applied'],
      [ENDPOINT, 'duplicate'],
    ]);
    const table = await sluice(['explain', '--message', 'o-3']);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('message o-3');
  });

  it('exits with meaningful codes', async () => {
    expect((await sluice(['explain', 'never-seen'])).code).toBe(3);
    expect((await sluice(['explain', '--message', 'never-seen'])).code).toBe(3);
    expect((await sluice(['explain'])).code).toBe(2);
    expect((await sluice(['explain', KEY, '--message', 'o-1'])).code).toBe(2);
    expect((await sluice(['explain', KEY, '--since', 'yesterday'])).code).toBe(2);
    expect((await sluice(['explain', KEY, '--endpoint', 'no-such-endpoint'])).code).toBe(3);
    expect((await sluice(['explain', KEY], { SLUICE_READ_TOKEN: undefined })).code).toBe(4);
    const help = await sluice(['explain', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--message <id>');
  });
});
