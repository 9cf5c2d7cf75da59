import { describe, expect, it } from 'vitest';
import { deadLetterWork } from '../../src/admin/dead-letter-job.js';
import { JobConflict, JobRegistry, type JobView } from '../../src/admin/job-registry.js';
import { ManualClock } from '../../src/internal/clock.js';
import type { DeadLetterQueue } from '../../src/transport-core/index.js';

const registry = (clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z')), keepFinished = 100) =>
  new JobRegistry({ clock, keepFinished, keepFinishedMs: 60_000, describeError: (e) => (e as Error).message });

/** A queue of `n` dead letters whose redrive takes what it is asked for, one chunk at a time. */
function queue(n: number, onChunk: () => Promise<void> = async () => {}) {
  let left = n;
  const calls: unknown[] = [];
  const dlq = {
    count: async () => left,
    redrive: async (selection: { limit: number } | { ids: readonly string[] }) => {
      calls.push(selection);
      await onChunk();
      const take = Math.min(left, 'limit' in selection ? selection.limit : selection.ids.length);
      left -= take;
      return { moved: take, ids: [] };
    },
    purge: async () => ({ removed: 0, ids: [] }),
  } as unknown as DeadLetterQueue;
  return { dlq, calls, left: () => left };
}

describe('jobs', () => {
  it('runs a redrive of all in chunks, bounded by the count at the start, with progress', async () => {
    const jobs = registry();
    const q = queue(1_200);
    const seen: JobView[] = [];
    const job = jobs.start(
      { kind: 'redrive', endpoint: 'billing', selection: { all: true }, reason: 'r' },
      deadLetterWork(q.dlq, { kind: 'redrive', selection: { all: true }, reason: 'r', scanLimit: 10, chunk: 500 }),
    );
    jobs.subscribe(job.id, (v) => seen.push(v));
    expect(job.state).toBe('selecting');
    const done = await jobs.settled(job.id);
    expect(done).toMatchObject({
      state: 'succeeded',
      progress: { total: 1_200, done: 1_200, succeeded: 1_200, missing: 0 },
    });
    expect(q.calls).toEqual([{ limit: 500 }, { limit: 500 }, { limit: 200 }]);
    expect(seen.map((v) => v.progress.done)).toEqual([0, 500, 1_000, 1_200, 1_200]);
  });

  it('takes the oldest limit of all, in chunks: a redrive in batches', async () => {
    const jobs = registry();
    const q = queue(1_200);
    const plan = {
      kind: 'redrive' as const,
      selection: { all: true as const, limit: 700 },
      reason: 'r',
      scanLimit: 10,
      chunk: 500,
    };
    const job = jobs.start(
      { kind: 'redrive', endpoint: 'billing', selection: plan.selection },
      deadLetterWork(q.dlq, plan),
    );
    expect(await jobs.settled(job.id)).toMatchObject({ state: 'succeeded', progress: { total: 700, succeeded: 700 } });
    expect(q.calls).toEqual([{ limit: 500 }, { limit: 200 }]);
    expect(q.left()).toBe(500);
  });

  it('takes the oldest limit of a filter: a group in batches', async () => {
    const jobs = registry();
    const letters = Array.from({ length: 5 }, (_, i) => ({
      deadLetterId: `d${i}`,
      messageId: `m${i}`,
      body: Buffer.alloc(0),
      headers: {},
      fault: undefined,
    }));
    const calls: unknown[] = [];
    const dlq = {
      scan: async function* () {
        yield letters;
      },
      redrive: async (selection: { ids: readonly string[] }) => {
        calls.push(selection);
        return { moved: selection.ids.length, ids: [] };
      },
    } as unknown as DeadLetterQueue;
    const plan = {
      kind: 'redrive' as const,
      selection: { filter: { reason: 'unknown' }, limit: 3 },
      reason: 'r',
      scanLimit: 10,
    };
    const job = jobs.start(
      { kind: 'redrive', endpoint: 'billing', selection: plan.selection },
      deadLetterWork(dlq, plan),
    );
    expect(await jobs.settled(job.id)).toMatchObject({ state: 'succeeded', progress: { total: 3, succeeded: 3 } });
    expect(calls).toEqual([{ ids: ['d0', 'd1', 'd2'] }]);
  });

  it('allows one job per endpoint, stops a cancelled one between chunks', async () => {
    const jobs = registry();
    let release: () => void = () => {};
    const q = queue(
      2_000,
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    const plan = {
      kind: 'redrive' as const,
      selection: { all: true as const },
      reason: 'r',
      scanLimit: 10,
      chunk: 500,
    };
    const job = jobs.start(
      { kind: 'redrive', endpoint: 'billing', selection: { all: true } },
      deadLetterWork(q.dlq, plan),
    );
    expect(() => jobs.start({ kind: 'purge', endpoint: 'billing', selection: {} }, async () => {})).toThrow(
      JobConflict,
    );
    const other = jobs.start({ kind: 'purge', endpoint: 'shipping', selection: {} }, async () => {});
    await jobs.settled(other.id);
    await new Promise((r) => setTimeout(r, 0));
    jobs.cancel(job.id);
    release();
    expect(await jobs.settled(job.id)).toMatchObject({ state: 'cancelled', progress: { done: 500 } });
    expect(q.left()).toBe(1_500);
  });

  it('fails a purge whose confirmed count no longer holds, removing nothing', async () => {
    const jobs = registry();
    const q = queue(7);
    const job = jobs.start(
      { kind: 'purge', endpoint: 'billing', selection: { all: true } },
      deadLetterWork(q.dlq, { kind: 'purge', selection: { all: true }, reason: 'r', expect: 5, scanLimit: 10 }),
    );
    expect(await jobs.settled(job.id)).toMatchObject({
      state: 'failed',
      error: expect.stringContaining('expected to remove 5, but the selection holds 7 now: nothing was removed'),
    });
    expect(q.calls).toEqual([]);
  });

  it('keeps finished jobs for a while and a bounded number of them', async () => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const jobs = registry(clock, 2);
    const ids: string[] = [];
    for (const endpoint of ['a', 'b', 'c']) {
      const job = jobs.start({ kind: 'purge', endpoint, selection: {} }, async () => {});
      await jobs.settled(job.id);
      ids.push(job.id);
    }
    expect(jobs.list().map((j) => j.endpoint)).toEqual(['c', 'b']);
    clock.advance(61_000);
    expect(jobs.list()).toEqual([]);
    expect(jobs.get(ids[2] as string)).toBeUndefined();
  });
});
