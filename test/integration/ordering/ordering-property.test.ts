import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareVersions } from '../../../src/ordering/ordering-policy.js';
import { checkTimestamp } from '../../../src/index.js';
import {
  type Harness,
  STORE_KINDS,
  type StateRow,
  type StoreKind,
  startHarness,
  stamp,
  type TestEvent,
} from './harness.js';

/**
 * For random updates and deletes of a few keys, delivered in random order with duplicates and
 * redeliveries (a first attempt that fails after writing), the final state is the state of applying
 * them in timestamp order (ties by message id), and no handler ever sees an event that is not newer
 * than the one applied before for its key.
 */
const eventsArb = fc.noShrink(
  fc.array(
    fc.record({
      key: fc.constantFrom('a', 'b', 'c'),
      tombstone: fc.integer({ min: 0, max: 2 }).map((n) => n === 0),
      ms: fc.integer({ min: 0, max: 4 }),
      nanos: fc.constantFrom(0, 1, 999_999),
      offset: fc.constantFrom('Z' as const, '+01:00' as const, '-05:30' as const),
      value: fc.integer({ min: 0, max: 1000 }),
      tag: fc.integer({ min: 10, max: 99 }),
      duplicate: fc.boolean(),
      failOnce: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      priority: fc.nat(),
      duplicatePriority: fc.nat(),
    }),
    { minLength: 1, maxLength: 12 },
  ),
);

function expected(events: readonly TestEvent[]): Map<string, StateRow> {
  const last = new Map<string, TestEvent>();
  const instant = (e: TestEvent) => {
    const c = checkTimestamp(e.occurredAt);
    if (!c.ok) throw new Error('bad stamp');
    return c.instant;
  };
  for (const e of events) {
    const prev = last.get(e.key);
    if (
      !prev ||
      compareVersions({ instant: instant(e), messageId: e.id }, { instant: instant(prev), messageId: prev.id }) > 0
    ) {
      last.set(e.key, e);
    }
  }
  return new Map(
    [...last].map(([k, e]) => [
      k,
      { value: e.tombstone ? null : e.value, deleted: e.tombstone, occurredAt: e.occurredAt, messageId: e.id },
    ]),
  );
}

function propertyFor(kind: StoreKind, variant: { name: string; numRuns: number; groupCommit?: 'rerun' | 'savepoint' }) {
  describe(`ordering guard on ${kind}${variant.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(kind, {
        endpoint: variant.groupCommit ? { groupCommit: { maxMessages: 8, isolation: variant.groupCommit } } : {},
      });
    });
    afterAll(async () => {
      await h?.stop();
    });

    it('ends in the timestamp-order state and never applies an older event', async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(eventsArb, async (drafts) => {
          run++;
          const events: TestEvent[] = drafts.map((d, i) => ({
            id: `r${run}-m${d.tag}-${i}`,
            key: `r${run}-${d.key}`,
            occurredAt: stamp(d.ms, d.nanos, d.offset),
            tombstone: d.tombstone,
            value: d.value,
          }));
          const deliveries = drafts
            .flatMap((d, i) => {
              const e = events[i] as TestEvent;
              return d.duplicate
                ? [
                    { e, p: d.priority },
                    { e, p: d.duplicatePriority },
                  ]
                : [{ e, p: d.priority }];
            })
            .sort((x, y) => x.p - y.p);
          drafts.forEach((d, i) => {
            if (d.failOnce) h.failOnce.add((events[i] as TestEvent).id);
          });
          await Promise.all(deliveries.map(({ e }) => h.send(e)));
          await h.settled(deliveries.length);
          const state = await h.state();
          const mine = new Map([...state].filter(([k]) => k.startsWith(`r${run}-`)));
          expect(h.violations).toEqual([]);
          expect(mine).toEqual(expected(events));
        }),
        { numRuns: variant.numRuns },
      );
    });
  });
}

for (const kind of STORE_KINDS) propertyFor(kind, { name: '', numRuns: kind === 'postgres' ? 60 : 80 });
propertyFor('postgres', { name: ' with group commit (rerun)', numRuns: 25, groupCommit: 'rerun' });
propertyFor('sqlite', { name: ' with group commit (savepoint)', numRuns: 25, groupCommit: 'savepoint' });
propertyFor('memory', { name: ' with group commit (savepoint)', numRuns: 25, groupCommit: 'savepoint' });
