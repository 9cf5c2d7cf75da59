import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { createDeferred } from '../../src/internal/deferred.js';
import type { DeliveryRun, ValidatedContext } from '../../src/pipeline/context.js';
import {
  DeliveryPipeline,
  type OutcomeMapper,
  type PipelineParts,
  type PipelineSink,
  TAKE_TURN,
} from '../../src/pipeline/delivery-pipeline.js';
import type { MaybePromise } from '../../src/pipeline/maybe-promise.js';
import { COMPLETED, type Outcome } from '../../src/pipeline/outcome.js';
import { type Report, recordingSink, runOf } from '../support/pipeline-runs.js';

// Issue 18: the endpoint's pipeline runs the head at once, queues what waits for its turn as the run
// itself, and reports each run's outcome (mapped) or error exactly once, freeing its turn.
function parts(
  turn: (ctx: ValidatedContext) => MaybePromise<Outcome>,
  more: Partial<PipelineParts> = {},
): PipelineParts {
  return {
    head: () => TAKE_TURN,
    keyOf: (_envelope, partitionKey) => partitionKey,
    turn,
    mappers: [],
    concurrency: 1,
    ...more,
  };
}

const ids = (reports: Report[]) => reports.map((r) => r.id);
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('DeliveryPipeline', () => {
  it('reports what the head decides at once, through the mappers in order, without a turn', () => {
    const sink = recordingSink();
    const seen: string[] = [];
    const mapper =
      (name: string): OutcomeMapper =>
      (_ctx, outcome) => {
        seen.push(name);
        return name === 'second' ? { kind: 'skipped', reason: 'dropped' } : outcome;
      };
    const pipeline = new DeliveryPipeline(
      parts(
        () => {
          throw new Error('no turn');
        },
        { head: () => ({ kind: 'released', reason: 'kill-switch' }), mappers: [mapper('first'), mapper('second')] },
      ),
      sink,
    );
    pipeline.run(runOf('a', 'k'));
    expect(seen).toEqual(['first', 'second']);
    expect(sink.reports).toEqual([{ id: 'a', outcome: { kind: 'skipped', reason: 'dropped' }, now: true }]);
    expect(pipeline.running).toBe(0);
  });

  it('runs turns in submission order per key, reporting first and then freeing the turn', async () => {
    const sink = recordingSink();
    const gate = createDeferred<void>();
    const order: string[] = [];
    const pipeline = new DeliveryPipeline(
      parts(
        (ctx) => {
          order.push(`start ${ctx.delivery.deliveryId}`);
          return ctx.delivery.deliveryId === 'a1' ? gate.promise.then(() => COMPLETED) : COMPLETED;
        },
        { concurrency: 4 },
      ),
      sink,
    );
    for (const [id, key] of [
      ['a1', 'a'],
      ['a2', 'a'],
      ['b1', 'b'],
      ['a3', 'a'],
    ] as const) {
      pipeline.run(runOf(id, key));
    }
    expect(order).toEqual(['start a1', 'start b1']);
    expect(pipeline.waiting).toBe(2);
    gate.resolve();
    await tick();
    expect(order).toEqual(['start a1', 'start b1', 'start a2', 'start a3']);
    // a1 decided in its own promise callback; the others inside a caller's stack.
    expect(sink.reports).toEqual([
      { id: 'b1', outcome: COMPLETED, now: true },
      { id: 'a1', outcome: COMPLETED, now: false },
      { id: 'a2', outcome: COMPLETED, now: true },
      { id: 'a3', outcome: COMPLETED, now: true },
    ]);
    expect(pipeline.running).toBe(0);
  });

  it('reports a turn that throws or rejects as an error, and frees its turn', async () => {
    const sink = recordingSink();
    const pipeline = new DeliveryPipeline(
      parts((ctx) => {
        if (ctx.delivery.deliveryId === 'throws') throw new Error('stage bug');
        if (ctx.delivery.deliveryId === 'rejects') return Promise.reject(new Error('async stage bug'));
        return COMPLETED;
      }),
      sink,
    );
    pipeline.run(runOf('throws', 'k'));
    pipeline.run(runOf('rejects', 'k'));
    pipeline.run(runOf('after', 'k'));
    await tick();
    expect(sink.reports).toEqual([
      { id: 'throws', error: 'Error: stage bug', now: true },
      { id: 'rejects', error: 'Error: async stage bug', now: false },
      { id: 'after', outcome: COMPLETED, now: true },
    ]);
    expect(pipeline.running).toBe(0);
  });

  it('frees the turn when the sink throws, so that a slot is never lost', async () => {
    let calls = 0;
    const sink: PipelineSink<DeliveryRun> = {
      outcome: () => {
        calls++;
        throw new Error('observer bug');
      },
      error: () => {},
    };
    const pipeline = new DeliveryPipeline(
      parts(() => Promise.resolve(COMPLETED)),
      sink,
    );
    const unhandled: unknown[] = [];
    const onUnhandled = (error: unknown) => unhandled.push(error);
    process.on('unhandledRejection', onUnhandled);
    try {
      pipeline.run(runOf('a', 'k'));
      pipeline.run(runOf('b', 'k'));
      await tick();
      await tick();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(calls).toBe(2);
    expect(pipeline.running).toBe(0);
    expect(unhandled).toHaveLength(2);
  });

  it("names a partitionKey function's throw, and releases what arrives while stopping without a turn", () => {
    const sink = recordingSink();
    const stopping = new AbortController();
    let turns = 0;
    const pipeline = new DeliveryPipeline(
      parts(
        () => {
          turns++;
          return COMPLETED;
        },
        {
          keyOf: (_envelope, key) => {
            if (key === 'bad') throw new Error('no key here');
            return key;
          },
        },
      ),
      sink,
    );
    pipeline.run(runOf('bad', 'bad'));
    stopping.abort();
    pipeline.run(runOf('late', 'k', stopping.signal));
    expect(turns).toBe(0);
    expect(sink.reports).toEqual([
      { id: 'bad', error: "Error: the endpoint's partitionKey function threw: no key here", now: true },
      { id: 'late', outcome: { kind: 'released', reason: 'shutdown' }, now: true },
    ]);
  });

  it('releases every run still waiting when cancelled, in order, and lets the running one finish', async () => {
    const sink = recordingSink();
    const gate = createDeferred<void>();
    const pipeline = new DeliveryPipeline(
      parts(() => gate.promise.then(() => COMPLETED)),
      sink,
    );
    for (const [id, key] of [
      ['a1', 'a'],
      ['b1', 'b'],
      ['a2', 'a'],
    ] as const) {
      pipeline.run(runOf(id, key));
    }
    pipeline.cancelWaiting();
    expect(sink.reports).toEqual([
      { id: 'b1', outcome: { kind: 'released', reason: 'shutdown' }, now: true },
      { id: 'a2', outcome: { kind: 'released', reason: 'shutdown' }, now: true },
    ]);
    gate.resolve();
    await tick();
    expect(ids(sink.reports)).toEqual(['b1', 'a2', 'a1']);
    expect(pipeline.waiting).toBe(0);
    expect(pipeline.running).toBe(0);
  });

  it('makes no promise for a run that waits for its turn', async () => {
    const sink = recordingSink();
    const gate = createDeferred<void>();
    const pipeline = new DeliveryPipeline(
      parts((ctx) => (ctx.delivery.deliveryId === 'first' ? gate.promise.then(() => COMPLETED) : COMPLETED)),
      sink,
    );
    pipeline.run(runOf('first', undefined));
    const runs = Array.from({ length: 1_000 }, (_, i) => runOf(`r${i}`, i % 2 === 0 ? undefined : `k${i % 10}`));
    let promises = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === 'PROMISE') promises++;
      },
    }).enable();
    try {
      for (const run of runs) pipeline.run(run);
    } finally {
      hook.disable();
    }
    expect(pipeline.waiting).toBe(1_000);
    expect(promises).toBe(0);
    gate.resolve();
    await tick();
    expect(sink.reports).toHaveLength(1_001);
  });
});
