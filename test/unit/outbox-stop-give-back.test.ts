// Rows leased to this instance's in-process dispatch when the bus stops are given back to the relays
// at once (their lease ended), not left until their lease runs out: those handed over in the turn
// the stop began (before their flush ran), and those whose transaction committed after the stop.
// The real memory store and a manual clock; nothing reaches a broker.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryOutbox } from '../../src/inbox/memory-outbox.js';
import { InProcessDispatch } from '../../src/outbox/in-process-dispatch.js';
import { Outbox } from '../../src/outbox/outbox.js';
import { OutboxConfigSchema } from '../../src/outbox/outbox-store.js';
import type { Transport } from '../../src/transport-core/transport.js';
import { keyedMessage } from '../support/outbox-message.js';

const config = OutboxConfigSchema.parse({ leaseMs: 1_000, dispatchTimeoutMs: 100, dispatchBacklog: 100 });
const OWNER = 'instance-1';
const logger = pino({ level: 'silent' });

const message = (id: string) => keyedMessage(id);

function setup() {
  const clock = { now: () => 1_000_000, setTimer: () => () => {} };
  let commits: (() => void)[] = [];
  const store = new MemoryOutbox({ clock, inTransaction: (_undo, commit) => commits.push(commit) });
  const commit = () => {
    for (const c of commits) c();
    commits = [];
  };
  const sent: string[] = [];
  const transport = {
    publish: async (m: { messageId: string }) => void sent.push(m.messageId),
  } as unknown as Transport;
  const outbox = new Outbox({
    store,
    instanceId: OWNER,
    transport,
    contentType: 'application/json',
    config,
    logger,
    clock,
    onBrokerFailure: () => {},
  });
  const claimable = async () => (await store.claim({ limit: 10, leaseMs: 1_000 })).map((r) => r.messageId);
  return { store, commit, sent, outbox, claimable, clock };
}

describe('the outbox gives leased rows back to the relays when the bus stops', () => {
  it('gives back rows handed over in the turn the stop began, within what the stop waits for', async () => {
    const { store, commit, sent, claimable, clock } = setup();
    const dispatch = new InProcessDispatch({
      store,
      config,
      clock,
      logger,
      wakeRelay: () => {},
      afterRound: () => {},
      dispatcher: {
        marked: async () => {},
        dispatch: async (rows) => {
          for (const r of rows) sent.push(r.messageId);
          return { dispatched: rows.length, movedAside: 0, nextRetryInMs: undefined, givenBack: new Set() };
        },
      },
    });
    const [w] = await store.write(undefined, [message('A')], { ms: config.leaseMs, owner: OWNER });
    commit();
    void dispatch.add([
      {
        ...message('A'),
        seq: w?.seq as number,
        createdAt: new Date(clock.now()),
        attempts: 1,
        nextAttemptAt: new Date(clock.now() + config.leaseMs),
        dispatchedAt: undefined,
        failedAt: undefined,
        failedReason: undefined,
      },
    ]);
    dispatch.stop(); // the same turn: the rows' flush has not run yet
    await Promise.all(dispatch.running());
    expect(sent).toEqual([]);
    expect(await claimable()).toEqual(['A']);
  });

  it('gives back the leased rows of a transaction that committed after the stop began', async () => {
    const { commit, sent, outbox, claimable } = setup();
    const written = await outbox.write(undefined, [message('L')]);
    expect(written.leased.map((r) => r.messageId)).toEqual(['L']);
    await outbox.stop();
    commit();
    await outbox.afterCommit(written);
    await new Promise((r) => setTimeout(r, 20));
    expect(sent).toEqual([]);
    expect(await claimable()).toEqual(['L']);
  });
});
