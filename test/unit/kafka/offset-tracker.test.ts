import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OffsetTracker } from '../../../transports/kafka/offset-tracker.js';

describe('OffsetTracker', () => {
  it('has nothing to commit before any offset is known', () => {
    expect(new OffsetTracker().committable).toBeUndefined();
  });

  it('commits the start offset when nothing was handed out', () => {
    expect(new OffsetTracker(42).committable).toBe(42);
  });

  it('commits below the lowest unsettled offset when deliveries settle out of order', () => {
    const t = new OffsetTracker();
    for (const o of [10, 11, 12, 13]) t.track(o);
    expect(t.committable).toBe(10);
    t.settle(12);
    t.settle(11);
    expect(t.committable).toBe(10);
    t.settle(10);
    expect(t.committable).toBe(13);
    t.settle(13);
    expect(t.committable).toBe(14);
    expect(t.unsettled).toBe(0);
  });

  it('steps over gaps in the offsets (compaction, skipped records)', () => {
    const t = new OffsetTracker(0);
    t.track(3);
    t.skip(4);
    t.track(9);
    expect(t.committable).toBe(3);
    t.settle(9);
    expect(t.committable).toBe(3);
    t.settle(3);
    expect(t.committable).toBe(10);
  });

  it('ignores a second settlement and an unknown offset', () => {
    const t = new OffsetTracker();
    t.track(1);
    expect(t.settle(1)).toBe(true);
    expect(t.settle(1)).toBe(false);
    expect(t.settle(7)).toBe(false);
  });

  it('rejects offsets tracked out of order and reports re-fetched ones as seen', () => {
    const t = new OffsetTracker();
    t.track(5);
    expect(() => t.track(5)).toThrow(RangeError);
    expect(t.seen(5)).toBe(true);
    expect(t.seen(6)).toBe(false);
  });

  it('never commits past an unsettled offset and never moves back (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 400 }),
        (gaps, picks) => {
          const t = new OffsetTracker(0);
          const offsets: number[] = [];
          let o = -1;
          for (const g of gaps) {
            o += g;
            offsets.push(o);
            t.track(o);
          }
          const open = new Set(offsets);
          let last = t.committable ?? 0;
          for (const p of picks) {
            const chosen = offsets[p % offsets.length] as number;
            t.settle(chosen);
            open.delete(chosen);
            const c = t.committable as number;
            expect(c).toBeGreaterThanOrEqual(last);
            last = c;
            const lowestOpen = Math.min(...open);
            expect(c).toBe(open.size === 0 ? o + 1 : lowestOpen);
          }
        },
      ),
    );
  });

  it('stays fast over a long run with compaction of its window', () => {
    const t = new OffsetTracker(0);
    for (let i = 0; i < 200_000; i++) {
      t.track(i);
      if (i >= 100) t.settle(i - 100);
    }
    expect(t.committable).toBe(199_900);
    expect(t.unsettled).toBe(100);
  });
});
