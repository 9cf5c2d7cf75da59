import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createBus,
  createMemoryBroker,
  DependencyError,
  defineMessage,
  type InboxEntry,
  memoryTransport,
} from '../../../src/index.js';
import { STOP_MARGIN_MS } from '../../../src/bus/bus.js';
import { sqliteInbox } from '../../../src/inbox/sqlite/index.js';
import { signal } from '../../support/signal.js';
import { waitFor } from '../../support/wait-for.js';
import { sqliteStore } from './stores.js';

/** The SQLite inbox when its file is locked by another connection (issue 19, items 4 and 12; issue 20, item 14). */
const entry = (messageId: string): InboxEntry => ({
  endpoint: 'ledger',
  messageId,
  messageType: 'bank.credit.v1',
  key: undefined,
  occurredAt: '2026-11-22T10:00:00Z',
  receivedAt: new Date(),
  attempts: 1,
  envelopeJson: undefined,
});
const closing: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

/** Another connection (as another process would) holding the file's write lock. */
function lockHolder(path: string): { release: () => void } {
  const other = new Database(path);
  other.exec('BEGIN IMMEDIATE');
  const release = () => {
    if (other.open && other.inTransaction) other.exec('COMMIT');
    if (other.open) other.close();
  };
  closing.push(release);
  return { release };
}

describe('sqlite inbox: a file another connection has locked', () => {
  it('waits for the lock without blocking the event loop', async () => {
    const { store, path } = sqliteStore();
    closing.push(() => store.close());
    await store.init();
    const holder = lockHolder(path);
    const order: string[] = [];
    const attempt = store
      .runOnce(entry('m1'), async () => ({ result: 'ran' }))
      .then((r) => {
        order.push('runOnce settled');
        return r;
      });
    // This timer can fire only while the store waits: a blocking busy wait would hold the event
    // loop until SQLite gave up (and the holder could never let go from here).
    setTimeout(() => {
      order.push('timer fired');
      holder.release();
    }, 30);
    expect(await attempt).toEqual({ status: 'processed', value: 'ran' });
    expect(order).toEqual(['timer fired', 'runOnce settled']);
  });

  it('fails with a dependency failure when the lock is held past busyTimeoutMs', async () => {
    const { store, path } = sqliteStore(undefined, { busyTimeoutMs: 200 });
    closing.push(() => store.close());
    await store.init();
    lockHolder(path);
    const failure = await store
      .runOnce(entry('m2'), async () => ({ result: 'never' }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(failure).toBeInstanceOf(DependencyError);
    expect(failure).toMatchObject({ dependency: 'inbox (sqlite)' });
    expect((failure as Error).message).toMatch(/locked .* longer than 200 ms \(inbox\.busyTimeoutMs\)/);
  });
});

describe('sqlite inbox: reads', () => {
  it('does not see a transaction in flight: find says "not processed" until it commits', async () => {
    const { store } = sqliteStore();
    closing.push(() => store.close());
    await store.init();
    const inside = signal();
    const commit = signal();
    const running = store.runOnce(entry('pending'), async () => {
      inside.fire();
      await commit.wait;
      return { result: 'done' };
    });
    await inside.wait;
    expect(await store.find('ledger', 'pending')).toBeUndefined();
    commit.fire();
    await running;
    expect(await store.find('ledger', 'pending')).toMatchObject({ messageId: 'pending', outcome: 'completed' });
  });

  it('does not report a transaction that rolls back as processed', async () => {
    const { store } = sqliteStore();
    closing.push(() => store.close());
    await store.init();
    const inside = signal();
    const fail = signal();
    const running = store.runOnce(entry('rolled-back'), async () => {
      inside.fire();
      await fail.wait;
      throw new Error('handler failed');
    });
    await inside.wait;
    const seenMeanwhile = await store.find('ledger', 'rolled-back');
    fail.fire();
    await expect(running).rejects.toThrow('handler failed');
    expect(seenMeanwhile).toBeUndefined();
  });
});

describe('sqlite inbox: stop with a handler that hangs', () => {
  it('closes within a bounded time although a transaction never ends', async () => {
    const { store } = sqliteStore();
    await store.init();
    const inside = signal();
    void store
      .runOnce(entry('hung'), async () => {
        inside.fire();
        await new Promise(() => {});
        return { result: 'never' };
      })
      .catch(() => {});
    await inside.wait;
    await store.close();
    await store.close();
  });

  it('lets bus.stop() return within shutdown.timeoutMs and its margin', async () => {
    const { path } = sqliteStore();
    const timeoutMs = 300;
    const bus = createBus(
      { shutdown: { signals: [], timeoutMs }, inbox: { kind: 'sqlite', path } },
      {
        inbox: sqliteInbox(),
        transports: [memoryTransport({ broker: createMemoryBroker() })],
        logger: pino({ level: 'silent' }),
      },
    );
    const Job = defineMessage('test.job.v1', z.object({ n: z.number() }));
    const inside = signal();
    bus.endpoint('jobs').handle(Job, async () => {
      inside.fire();
      // Ignores ctx.signal: a handler that hangs for good, holding the inbox transaction.
      await new Promise(() => {});
    });
    await bus.start();
    await bus.send('jobs', Job, { n: 1 });
    await inside.wait;
    const started = Date.now();
    await bus.stop();
    expect(Date.now() - started).toBeLessThan(timeoutMs + STOP_MARGIN_MS + 5_000);
    await waitFor(() => bus.state === 'stopped');
  });
});
