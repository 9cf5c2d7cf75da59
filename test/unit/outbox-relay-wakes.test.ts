// The relay is woken after an in-process round only when a row of this instance waits behind one
// of the round's keys: a row waiting behind another instance's row of another key is the relay's
// short poll's, not a claim per round (under steady load, hundreds a second). The real memory store;
// the broker is a function that records what it is given.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryOutbox } from '../../src/inbox/memory-outbox.js';
import { Outbox } from '../../src/outbox/outbox.js';
import { type ClaimOptions, OutboxConfigSchema } from '../../src/outbox/outbox-store.js';
import type { Transport } from '../../src/transport-core/transport.js';
import { keyedMessage } from '../support/outbox-message.js';

const config = OutboxConfigSchema.parse({ leaseMs: 60_000, dispatchTimeoutMs: 100, pollIntervalMs: 60_000 });
let outbox: Outbox | undefined;
afterEach(async () => {
  await outbox?.stop();
  outbox = undefined;
});

describe('the outbox relay’s wake-ups after in-process rounds', () => {
  it('does not claim after rounds of other keys while a row waits behind another instance’s row', async () => {
    const clock = { now: () => Date.now(), setTimer: () => () => {} };
    const commits: (() => void)[] = [];
    const store = new MemoryOutbox({ clock, inTransaction: (_undo, commit) => commits.push(commit) });
    const commit = () => {
      for (const c of commits.splice(0)) c();
    };
    let claims = 0;
    const claim = store.claim.bind(store);
    store.claim = (options: ClaimOptions) => {
      claims++;
      return claim(options);
    };
    const sent: string[] = [];
    const transport = {
      publish: async (m: { messageId: string }) => void sent.push(m.messageId),
    } as unknown as Transport;
    outbox = new Outbox({
      store,
      instanceId: 'instance-1',
      transport,
      contentType: 'application/json',
      config,
      logger: pino({ level: 'silent' }),
      clock,
      onBrokerFailure: () => {},
    });
    await outbox.start();
    // Another instance's row of K, leased to it; this instance's row of K is written behind it.
    await store.write(undefined, [keyedMessage('theirs', 'K')], { ms: 60_000, owner: 'instance-2' });
    commit();
    const mine = await outbox.write(undefined, [keyedMessage('mine', 'K')]);
    commit();
    expect(mine.waiting.map((w) => w.key)).toEqual(['K']);
    await outbox.afterCommit(mine);
    await new Promise((r) => setTimeout(r, 5));

    const before = claims;
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      const written = await outbox.write(undefined, [keyedMessage(`j-${i}`, `J${i}`)]);
      commit();
      await outbox.afterCommit(written);
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 5));
    expect(sent).toEqual(Array.from({ length: 20 }, (_, i) => `j-${i}`));
    // Twenty rounds: only the short poll's claims (one per 50 ms while a row waits), not one a round.
    expect(claims - before).toBeLessThanOrEqual(1 + Math.floor((Date.now() - started) / 50));
    expect(sent).not.toContain('mine');
  });
});
