import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  createBus,
  createMemoryBroker,
  DependencyError,
  defineMessage,
  type EndpointOptions,
  memoryInbox,
  memoryTransport,
  PermanentError,
} from '../../../src/index.js';
import { postgresInbox } from '../../../src/inbox/postgres/index.js';
import { sqliteInbox } from '../../../src/inbox/sqlite/index.js';
import { waitFor } from '../../support/wait-for.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { PG_URL, testPool, uniqueTable } from '../inbox/stores.js';

const Step = defineMessage(
  'history.step.v1',
  z.object({ n: z.number(), fail: z.enum(['none', 'once', 'dependency', 'permanent']) }),
);
type Kind = 'memory' | 'sqlite' | 'postgres';

/** A bus on the memory transport with the given inbox store and history on; its handler fails as each message says. */
async function busOn(
  kind: Kind,
  endpoint: EndpointOptions,
  batch = false,
): Promise<{ bus: Bus<unknown>; historyTable: string; drop: () => Promise<void> }> {
  const inboxTable = uniqueTable('inbox');
  const historyTable = uniqueTable('history');
  const base = {
    shutdown: { signals: [] as [] },
    history: { enabled: true, table: historyTable },
  };
  const options = {
    transports: [memoryTransport({ broker: createMemoryBroker() })],
    logger: pino({ level: 'silent' }),
  };
  let bus: Bus<unknown>;
  if (kind === 'memory')
    bus = createBus({ ...base, inbox: { kind: 'memory' } }, { ...options, inbox: memoryInbox() }) as Bus<unknown>;
  else if (kind === 'sqlite') {
    const path = join(mkdtempSync(join(tmpdir(), 'sluice-history-')), 'inbox.db');
    bus = createBus(
      { ...base, inbox: { kind: 'sqlite', path, table: inboxTable } },
      { ...options, inbox: sqliteInbox() },
    ) as Bus<unknown>;
  } else {
    bus = createBus(
      { ...base, inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table: inboxTable } },
      { ...options, inbox: postgresInbox() },
    ) as Bus<unknown>;
  }
  const failed = new Set<string>();
  if (batch) bus.endpoint('steps', endpoint).handleBatch(Step, async () => {}, { maxMessages: 10, maxWaitMs: 20 });
  else
    bus.endpoint('steps', endpoint).handle(Step, async (step, ctx) => {
      if (step.fail === 'permanent') throw new PermanentError(`step ${step.n} cannot be done`);
      if (step.fail === 'none' || failed.has(ctx.messageId)) return;
      failed.add(ctx.messageId);
      if (step.fail === 'dependency') throw new DependencyError('the ledger is down', { dependency: 'ledger' });
      throw new TypeError(`step ${step.n} failed once`);
    });
  await bus.start();
  return {
    bus,
    historyTable,
    drop: async () => {
      await bus.stop();
      if (kind !== 'postgres') return;
      const pool = testPool();
      await pool.query(
        `DROP TABLE IF EXISTS ${TEST_SCHEMA}.${inboxTable}, ${TEST_SCHEMA}.${inboxTable}_versions, ${TEST_SCHEMA}.${historyTable}`,
      );
      await pool.end();
    },
  };
}

const finals = (bus: Bus<unknown>) => {
  const c = bus.health().endpoints.steps?.counters;
  return (c?.completed ?? 0) + (c?.skipped ?? 0) + (c?.deadLettered ?? 0);
};

describe.each(['memory', 'sqlite', 'postgres'] as const)('what the history leaves out on the %s inbox', (kind) => {
  let drop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await drop?.();
    drop = undefined;
  });

  it('records one row per final outcome: none for a retry, a dependency failure or a message held by the kill switch', async () => {
    const made = await busOn(kind, {
      concurrency: 4,
      retry: { kind: 'immediate', retries: 3 },
      dependencyBackoffMs: { initial: 1, factor: 1, max: 1 },
      killSwitch: { enabled: true, dependencyFailures: 100 },
    });
    drop = made.drop;
    const { bus } = made;
    await bus.send('steps', Step, { n: 1, fail: 'once' }, { id: 's-1', key: 'k' });
    await bus.send('steps', Step, { n: 2, fail: 'dependency' }, { id: 's-2', key: 'k' });
    await waitFor(() => finals(bus) === 2, { what: 'two final outcomes' });
    // The dependency failure was a release (no attempt spent), not an outcome.
    expect(bus.health().endpoints.steps?.counters.dependencyFailures).toBe(1);
    // Tripped: the next message stays on the broker (or is released back) until the reset.
    bus.killSwitch('steps').trip('maintenance');
    await bus.send('steps', Step, { n: 3, fail: 'none' }, { id: 's-3', key: 'k' });
    // s-1's retry and s-2's dependency release both go back to the broker: either may finish first.
    expect((await bus.explain('k')).entries.map((e) => e.messageId).sort()).toEqual(['s-1', 's-2']);
    bus.killSwitch('steps').reset('done');
    await waitFor(() => finals(bus) === 3, { what: 'the third after the reset' });
    const { entries } = await bus.explain('k');
    // The retried message took two attempts; the dependency failure spent none.
    expect(entries.map((e) => [e.messageId, e.outcome, e.attempts]).sort()).toEqual([
      ['s-1', 'applied', 2],
      ['s-2', 'applied', 1],
      ['s-3', 'applied', 1],
    ]);
    expect(entries[2]?.messageId).toBe('s-3');
  });

  it('with group commit, a member that fails in its savepoint writes no row; the others commit theirs', async () => {
    const made = await busOn(kind, {
      concurrency: 16,
      retry: { kind: 'none' },
      killSwitch: { enabled: false },
      groupCommit: { maxMessages: 16, maxWaitMs: 20, isolation: 'savepoint' },
    });
    drop = made.drop;
    const { bus } = made;
    for (let n = 1; n <= 6; n++) {
      await bus.send('steps', Step, { n, fail: n === 3 ? 'permanent' : 'none' }, { id: `g-${n}`, key: 'group' });
    }
    await waitFor(() => finals(bus) === 6, { what: 'six final outcomes' });
    await waitFor(async () => (await bus.explain('group')).entries.length === 6, { what: 'six rows' });
    const { entries } = await bus.explain('group');
    const byId = new Map(entries.map((e) => [e.messageId, e]));
    expect(entries).toHaveLength(6);
    for (const n of [1, 2, 4, 5, 6]) expect(byId.get(`g-${n}`)?.outcome).toBe('applied');
    expect(byId.get('g-3')).toMatchObject({
      outcome: 'dead-lettered',
      reason: 'permanent-failure',
      inDeadLetterQueue: true,
    });
  });

  it("records a batch handler's messages: applied, and a duplicate for an id seen before", async () => {
    const made = await busOn(kind, { concurrency: 10, retry: { kind: 'none' }, killSwitch: { enabled: false } }, true);
    drop = made.drop;
    const { bus } = made;
    for (let n = 1; n <= 3; n++) await bus.send('steps', Step, { n, fail: 'none' }, { id: `b-${n}`, key: 'batch' });
    await waitFor(() => finals(bus) === 3, { what: 'the first batch' });
    await bus.send('steps', Step, { n: 2, fail: 'none' }, { id: 'b-2', key: 'batch' });
    await waitFor(() => finals(bus) === 4, { what: 'the duplicate' });
    const { entries } = await bus.explain('batch');
    expect(entries.map((e) => [e.messageId, e.outcome, e.reason])).toEqual([
      ['b-1', 'applied', null],
      ['b-2', 'applied', null],
      ['b-3', 'applied', null],
      ['b-2', 'duplicate', null],
    ]);
  });
});

describe.each(['sqlite', 'postgres'] as const)('a history table gone under a running %s bus', (kind) => {
  it('is a dependency failure: the message goes back, never to the dead-letter queue, and is applied once the table is back', async () => {
    const { postgresHistoryDdl, sqliteHistoryDdl } = await import('../../../src/index.js');
    const made = await busOn(kind, {
      retry: { kind: 'none' },
      dependencyBackoffMs: { initial: 1, factor: 1, max: 1 },
      killSwitch: { enabled: false },
    });
    const { bus } = made;
    const history = made.historyTable;
    const inbox = bus.inbox as unknown as { transaction<R>(fn: (tx: unknown) => Promise<R>): Promise<R> };
    const exec = (sql: string) =>
      inbox.transaction(async (tx) => {
        if (kind === 'sqlite') (tx as { exec(s: string): void }).exec(sql);
        else await (tx as { query(s: string): Promise<unknown> }).query(sql);
      });
    const qualified = kind === 'postgres' ? `${TEST_SCHEMA}.${history}` : history;
    try {
      await exec(`DROP TABLE ${qualified}`);
      await bus.send('steps', Step, { n: 1, fail: 'none' }, { id: 'gone-1', key: 'gone' });
      await waitFor(() => (bus.health().endpoints.steps?.counters.dependencyFailures ?? 0) >= 2, {
        what: 'dependency failures',
      });
      expect(bus.health().endpoints.steps?.counters.deadLettered).toBe(0);
      await exec(kind === 'postgres' ? postgresHistoryDdl(TEST_SCHEMA, history) : sqliteHistoryDdl(history));
      await waitFor(() => bus.health().endpoints.steps?.counters.completed === 1, {
        what: 'applied after the table came back',
      });
      expect((await bus.explain('gone')).entries.map((e) => [e.messageId, e.outcome])).toEqual([['gone-1', 'applied']]);
    } finally {
      await made.drop();
    }
  });
});
