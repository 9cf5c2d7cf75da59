// The in-process dispatch of the outbox keeps a key's commit order when it cannot see everything:
// a row written behind one of this instance's rows that never reached it (a lost commit reply), and
// a row whose lease ran out before its commit. The real memory store, a manual clock, and a
// dispatcher that records what it would hand the broker (every row confirmed unless told otherwise).
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryOutbox } from '../../src/inbox/memory-outbox.js';
import { InProcessDispatch } from '../../src/outbox/in-process-dispatch.js';
import type { DispatchResult } from '../../src/outbox/outbox-dispatcher.js';
import { type OutboxRow, OutboxConfigSchema } from '../../src/outbox/outbox-store.js';
import { keyedMessage } from '../support/outbox-message.js';

const config = OutboxConfigSchema.parse({ leaseMs: 1_000, dispatchTimeoutMs: 100, dispatchBacklog: 100 });
const OWNER = 'instance-1';

function setup(failFirst = false, gate: Promise<void> = Promise.resolve()) {
  let now = 1_000_000;
  const clock = { now: () => now, setTimer: () => () => {} };
  let commits: (() => void)[] = [];
  const store = new MemoryOutbox({ clock, inTransaction: (_undo, commit) => commits.push(commit) });
  const sent: string[] = [];
  let fail = failFirst;
  const dispatch = new InProcessDispatch({
    store,
    config,
    clock,
    logger: pino({ level: 'silent' }),
    wakeRelay: () => {},
    afterRound: () => {},
    dispatcher: {
      marked: async () => {},
      dispatch: async (rows): Promise<DispatchResult> => {
        await gate;
        if (fail) {
          fail = false;
          await store.retryAfter(rows.map((r) => ({ seq: r.seq, attempts: r.attempts, delayMs: 5_000 })));
          const givenBack = new Set(rows.map((r) => r.seq));
          return { dispatched: 0, movedAside: 0, nextRetryInMs: 5_000, givenBack };
        }
        for (const r of rows) sent.push(r.messageId);
        await store.markDispatched(
          rows.map((r) => r.seq),
          false,
        );
        return { dispatched: rows.length, movedAside: 0, nextRetryInMs: undefined, givenBack: new Set() };
      },
    },
  });
  /** Writes one message of key K as Outbox.write does (leased rows noted); `commit` ends its transaction. */
  // (`note` false: as with a store that writes at the COMMIT, whose rows are noted when it came back.)
  const write = async (id: string, note = true): Promise<{ row: OutboxRow; leased: boolean }> => {
    const message = keyedMessage(id);
    const [written] = await store.write(undefined, [message], { ms: config.leaseMs, owner: OWNER });
    const row: OutboxRow = {
      ...message,
      seq: written?.seq as number,
      createdAt: new Date(now),
      attempts: 1,
      nextAttemptAt: new Date(now + config.leaseMs),
      dispatchedAt: undefined,
      failedAt: undefined,
      failedReason: undefined,
    };
    if (written?.leased && note) dispatch.note(row);
    return { row, leased: written?.leased === true };
  };
  const commit = () => {
    for (const c of commits) c();
    commits = [];
  };
  const settle = () => new Promise((r) => setTimeout(r, 10));
  const undispatched = async () => (await store.rows(100)).filter((r) => !r.dispatchedAt).map((r) => r.messageId);
  return { dispatch, store, write, commit, settle, sent, undispatched, advance: (ms: number) => (now += ms) };
}

describe('the outbox in-process dispatch keeps a key in commit order', () => {
  it('gives the relay a row written behind one of its own rows that never reached it (a lost commit reply)', async () => {
    const { dispatch, write, commit, settle, sent, undispatched } = setup();
    const first = await write('E');
    commit(); // committed on the server; the writer saw an error and never handed E over
    const next = await write('R');
    commit();
    expect([first.leased, next.leased]).toEqual([true, true]);
    await dispatch.add([next.row]);
    await settle();
    expect(sent).toEqual([]); // R did not overtake E: both are the relay's, in seq order
    expect(await undispatched()).toEqual(['E', 'R']);
  });

  it('gives the relay a row whose lease ran out before its transaction committed', async () => {
    const { dispatch, write, commit, settle, sent, undispatched, advance } = setup(true);
    const a = await write('A');
    commit();
    const r = await write('R'); // leased behind A; its transaction stays open
    await dispatch.add([a.row]); // A fails at the broker: given back with a backoff
    await settle();
    advance(1_200); // R commits after more than a lease
    commit();
    await dispatch.add([r.row]);
    await settle();
    expect(sent).toEqual([]);
    expect(await undispatched()).toEqual(['A', 'R']);
  });

  // A store that writes at the COMMIT (PostgreSQL) learns a row only when its COMMIT came back, and
  // the replies of two connections may come back in either order: each row says which row of its key
  // was the last before it (`after`), and goes out in process only after that one did here.
  it('gives the relay a row whose COMMIT reply came back before the reply of the row before it', async () => {
    const { dispatch, write, commit, settle, sent, undispatched } = setup();
    const a = await write('A', false);
    commit();
    const b = await write('B', false);
    commit();
    await dispatch.add([{ ...b.row, after: a.row.seq }]); // B's reply first
    await settle();
    await dispatch.add([a.row]); // then A's: its key was given to the relay
    await settle();
    expect(sent).toEqual([]);
    expect(await undispatched()).toEqual(['A', 'B']);
  });

  it('sends a row in process after the row it was written behind, once that one was handed over', async () => {
    const { dispatch, write, commit, settle, sent } = setup();
    const a = await write('A', false);
    commit();
    await dispatch.add([a.row]);
    const b = await write('B', false); // A may still be undispatched in the table: B was written after it
    commit();
    await dispatch.add([{ ...b.row, after: a.row.seq }]);
    await settle();
    const c = await write('C', false);
    commit();
    await dispatch.add([{ ...c.row, after: b.row.seq }]);
    await settle();
    expect(sent).toEqual(['A', 'B', 'C']);
  });

  it('sends a key’s rows in process, in order, when every earlier row reached it', async () => {
    const { dispatch, write, commit, settle, sent } = setup();
    const rows = [];
    for (const id of ['A', 'B', 'C']) {
      rows.push((await write(id)).row);
      commit();
    }
    await dispatch.add(rows);
    await settle();
    expect(sent).toEqual(['A', 'B', 'C']);
  });
});

describe('the outbox in-process dispatch when the bus stops', () => {
  it('finishes the round at the broker and gives the rows that would have followed it back to the relays', async () => {
    let open = () => {};
    const { dispatch, store, write, commit, settle, sent, undispatched } = setup(
      false,
      new Promise<void>((resolve) => {
        open = resolve;
      }),
    );
    const rows = [await write('A'), await write('B'), await write('C')];
    commit();
    void dispatch.add(rows.map((r) => r.row)); // A goes to the broker; B and C wait in the key's chain
    await settle();
    dispatch.stop();
    open(); // A is confirmed after the stop began
    await Promise.all(dispatch.running());
    await settle();
    expect(sent).toEqual(['A']);
    expect(await undispatched()).toEqual(['B', 'C']);
    // Given back (lease ended): a relay takes B now, not after the lease.
    expect((await store.claim({ limit: 10, leaseMs: 1_000 })).map((r) => r.messageId)).toEqual(['B']);
  });

  it('gives rows committed after the stop began back to the relays without sending them', async () => {
    const { dispatch, write, commit, settle, sent, undispatched } = setup();
    dispatch.stop();
    const late = await write('L');
    const loose = await write('U');
    commit();
    await dispatch.add([late.row, { ...loose.row, key: undefined }]);
    await Promise.all(dispatch.running());
    await settle();
    expect(sent).toEqual([]);
    expect(await undispatched()).toEqual(['L', 'U']);
  });
});
