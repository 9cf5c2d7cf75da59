import { createHook } from 'node:async_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  cloudEventsCodec,
  createEnvelope,
  DependencyError,
  defineMessage,
  type Handler,
  type MessageOf,
} from '../../src/index.js';
import { createDeferred } from '../../src/internal/deferred.js';
import { COMPLETED, type Outcome } from '../../src/pipeline/outcome.js';
import type { Gate } from '../../src/pipeline/stages/gate-stage.js';
import { createTestHarness, type TestHarness } from '../../src/testing/index.js';
import { throughGate } from '../support/pipeline-runs.js';

// Issue 18: stages and a handler that finish synchronously run the chain with no promise per stage;
// what each stage decides and observes stays what it was.
const Charge = defineMessage('billing.charge.v1', z.object({ orderId: z.string() }));

/** A kill switch as the gate stage sees it, recording what it is shown. */
function recordingGate(): Gate & { observed: { ticket: number; outcome: Outcome }[] } {
  const observed: { ticket: number; outcome: Outcome }[] = [];
  return {
    observed,
    releasesAll: () => false,
    admit: () => 7,
    isProbe: () => true,
    observe: (ticket, outcome) => {
      observed.push({ ticket, outcome });
      return outcome;
    },
  };
}

describe('the kill switch over a turn decided without waiting', () => {
  let recordingGateOf = recordingGate();
  afterEach(() => {
    recordingGateOf = recordingGate();
  });

  it('shows the switch the outcome once, reported inside the call', async () => {
    const report = await throughGate(recordingGateOf, () => COMPLETED);
    expect(report).toEqual({ id: 'm-1', outcome: COMPLETED, now: true });
    expect(recordingGateOf.observed).toEqual([{ ticket: 7, outcome: COMPLETED }]);
  });

  it('gives the probe slot back once when a later stage throws synchronously, and reports the error', async () => {
    const report = await throughGate(recordingGateOf, () => {
      throw new Error('stage bug');
    });
    expect(report).toEqual({ id: 'm-1', error: 'Error: stage bug', now: true });
    expect(recordingGateOf.observed).toEqual([{ ticket: 7, outcome: { kind: 'released', reason: 'shutdown' } }]);
  });

  it('still waits for a promise, observing once when it settles', async () => {
    const gate = createDeferred<void>();
    const reported = throughGate(recordingGateOf, () => gate.promise.then(() => COMPLETED));
    await new Promise((resolve) => setImmediate(resolve));
    expect(recordingGateOf.observed).toEqual([]);
    gate.resolve();
    expect(await reported).toEqual({ id: 'm-1', outcome: COMPLETED, now: false });
    expect(recordingGateOf.observed).toEqual([{ ticket: 7, outcome: COMPLETED }]);
  });
});

describe('a synchronous handler through the whole pipeline', () => {
  let harness: TestHarness | undefined;
  afterEach(async () => {
    await harness?.stop();
    harness = undefined;
  });
  const charging = async (
    handler: Handler<MessageOf<typeof Charge>>,
    endpoint: Record<string, unknown> = {},
  ): Promise<TestHarness> => {
    harness = createTestHarness({ config: { endpoints: { billing: endpoint } } });
    harness.bus.endpoint('billing').handle(Charge, handler);
    await harness.start();
    return harness;
  };

  it('retries a synchronous throw in process like a rejection, then completes', async () => {
    const attempts: number[] = [];
    const h = await charging(
      (_m, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error('flaky');
      },
      { retry: { kind: 'immediate', retries: 3 } },
    );
    await h.send('billing', Charge, { orderId: 'o1' });
    await h.settled();
    expect(attempts).toEqual([1, 2, 3]);
    expect(h.outcomes.map((o) => o.outcome?.kind)).toEqual(['completed']);
  });

  it('releases a synchronous dependency failure without spending an attempt', async () => {
    let calls = 0;
    const h = await charging(() => {
      calls++;
      if (calls === 1) throw new DependencyError('ledger down', { dependency: 'ledger' });
    });
    await h.send('billing', Charge, { orderId: 'o1' });
    await h.settled();
    const kinds = h.outcomes.map((o) => (o.outcome?.kind === 'released' ? o.outcome.reason : o.outcome?.kind));
    expect(kinds).toEqual(['dependency', 'completed']);
  });

  it('dead-letters on a synchronous ctx.deadLetter, and the kill switch counts each delivery once', async () => {
    const h = await charging(
      (_m, ctx) => {
        ctx.deadLetter('refused');
      },
      { killSwitch: { consecutiveFailures: 3 } },
    );
    await h.send('billing', Charge, { orderId: 'o1' });
    await h.send('billing', Charge, { orderId: 'o2' });
    await h.settled();
    expect(h.deadLettered(Charge).map((d) => d.fault.reason)).toEqual([
      'handler-dead-lettered',
      'handler-dead-lettered',
    ]);
    // Two failures of three: still closed (a delivery counted twice would have tripped it).
    expect(h.bus.killSwitch('billing').state).toBe('closed');
    await h.send('billing', Charge, { orderId: 'o3' });
    await h.settled();
    expect(h.bus.killSwitch('billing').state).toBe('tripped');
  });

  it('keeps per-key order and the concurrency limit with synchronous and asynchronous handlers mixed', async () => {
    const seen = new Map<string, number[]>();
    let running = 0;
    let max = 0;
    const h = await charging(
      (m) => {
        const [key, n] = m.orderId.split(':') as [string, string];
        seen.set(key, [...(seen.get(key) ?? []), Number(n)]);
        running++;
        max = Math.max(max, running);
        // Every third message waits a turn; the others finish synchronously.
        if (Number(n) % 3 === 0) return Promise.resolve().then(() => void running--);
        running--;
      },
      { concurrency: 2, orderBy: 'key' },
    );
    for (let n = 0; n < 30; n++) {
      const key = `k${n % 3}`;
      await h.send('billing', Charge, { orderId: `${key}:${n}` }, { key });
    }
    await h.settled();
    expect(seen.get('k0')).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
    expect(seen.get('k1')).toEqual([1, 4, 7, 10, 13, 16, 19, 22, 25, 28]);
    expect(max).toBeLessThanOrEqual(2);
    expect(h.outcomes).toHaveLength(30);
  });

  it('makes about one promise or microtask per message (the scheduling hops), not one per stage', async () => {
    // Counted with the microtasks that schedule work (the memory queue's pump, the endpoint's
    // settlement per burst): a `queueMicrotask` and a reaction on a resolved promise are the same
    // hop, and which of the two makes it is an implementation choice.
    const h = await charging(() => {});
    const count = 1000;
    const bodies = Array.from({ length: count }, (_, n) => {
      const envelope = createEnvelope(Charge.type, 'test', { orderId: `o${n}` }, { key: `k${n % 10}` });
      return { messageId: envelope.id, body: cloudEventsCodec.encode(envelope), headers: {}, key: envelope.key };
    });
    let promises = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === 'PROMISE' || type === 'Microtask') promises++;
      },
    });
    hook.enable();
    try {
      for (const b of bodies) h.broker.queue('billing').enqueue({ ...b, deliveryCount: 0 });
      await h.settled();
    } finally {
      hook.disable();
    }
    expect(h.outcomes).toHaveLength(count);
    // Before issue 18's change: 7.4 promises per message (one per stage boundary and the
    // settlement's), besides the hops. Now the hops only: 1.03 per message at this prefetch, whether
    // they are made with `queueMicrotask` or with a resolved promise.
    expect(promises / count).toBeLessThan(1.5);
  });
});
