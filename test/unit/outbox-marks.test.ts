// Confirmed rows are marked dispatched in one statement per linger (MARK_LINGER_MS) rather than one
// per dispatch round: each statement is a transaction of the outbox's database. `marked()` marks what
// waits at once. The real memory store, its markDispatched counted; the broker records what it gets.
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { MemoryOutbox } from '../../src/inbox/memory-outbox.js';
import { OutboxDispatcher } from '../../src/outbox/outbox-dispatcher.js';
import { OutboxConfigSchema, type OutboxRow } from '../../src/outbox/outbox-store.js';
import type { Transport } from '../../src/transport-core/transport.js';
import { keyedMessage } from '../support/outbox-message.js';

const config = OutboxConfigSchema.parse({ leaseMs: 60_000, dispatchTimeoutMs: 1_000 });

async function setUp(rows: number) {
  const clock = { now: () => Date.now(), setTimer: () => () => {} };
  const commits: (() => void)[] = [];
  const store = new MemoryOutbox({ clock, inTransaction: (_undo, commit) => commits.push(commit) });
  await store.write(
    undefined,
    Array.from({ length: rows }, (_, i) => keyedMessage(`m-${i}`, `k-${i}`)),
    { ms: 0, owner: 'me' },
  );
  for (const c of commits.splice(0)) c();
  const claimed = await store.claim({ limit: rows, leaseMs: 60_000 });
  const statements: number[][] = [];
  const mark = store.markDispatched.bind(store);
  store.markDispatched = (seqs, remove) => {
    statements.push([...seqs]);
    return mark(seqs, remove);
  };
  const transport = { publish: async () => {} } as unknown as Transport;
  const dispatcher = new OutboxDispatcher({
    store,
    transport,
    contentType: 'application/json',
    config,
    logger: pino({ level: 'silent' }),
    onBrokerFailure: () => {},
    stopping: () => false,
  });
  return { store, claimed, statements, dispatcher };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('marking confirmed outbox rows dispatched', () => {
  it('marks the rows of many rounds in one statement', async () => {
    const { store, claimed, statements, dispatcher } = await setUp(10);
    // Ten rounds, a turn of the event loop apart: each would have had a statement of its own.
    for (const row of claimed) {
      await dispatcher.dispatch([row]);
      await turn();
    }
    await vi.waitFor(async () => expect((await store.stats()).depth).toBe(0), { timeout: 2_000, interval: 5 });
    expect(statements.flat().sort((a, b) => a - b)).toEqual(claimed.map((r) => r.seq));
    expect(statements.length).toBe(1);
  });

  it('marks what waits at once when asked, and does not wait for rows confirmed after the ask', async () => {
    const { store, claimed, statements, dispatcher } = await setUp(3);
    const [first, second, third] = claimed as [OutboxRow, OutboxRow, OutboxRow];
    await dispatcher.dispatch([first, second]);
    const asked = dispatcher.marked();
    await dispatcher.dispatch([third]);
    await asked;
    expect(statements[0]).toEqual([first.seq, second.seq]);
    expect((await store.stats()).depth).toBe(1);
    await dispatcher.marked();
    expect((await store.stats()).depth).toBe(0);
    expect(statements.flat()).toEqual([first.seq, second.seq, third.seq]);
  });
});
