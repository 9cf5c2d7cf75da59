import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExplainEntry } from '../../../src/index.js';
import {
  type Harness,
  type StateRow,
  type StoreKind,
  startHarness,
  stamp,
  type TestEvent,
} from '../ordering/harness.js';

/**
 * For random updates and deletes of a few keys, delivered in random order with duplicates and
 * first attempts that fail after writing (rolled back), each key's timeline has exactly one entry
 * per delivery (a rolled-back attempt leaves none), and its applied entries, replayed in timeline
 * order from the data the history keeps, end in the state the handler stored.
 */
const eventsArb = fc.noShrink(
  fc.array(
    fc.record({
      key: fc.constantFrom('a', 'b', 'c'),
      tombstone: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
      ms: fc.integer({ min: 0, max: 4 }),
      value: fc.integer({ min: 0, max: 1000 }),
      duplicate: fc.boolean(),
      failOnce: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      priority: fc.nat(),
      duplicatePriority: fc.nat(),
    }),
    { minLength: 1, maxLength: 12 },
  ),
);

function replay(entries: readonly ExplainEntry[]): StateRow | undefined {
  let state: StateRow | undefined;
  for (const e of entries) {
    if (e.outcome !== 'applied') continue;
    const value = e.tombstone ? null : (JSON.parse(e.data ?? 'null') as { value: number }).value;
    state = { value, deleted: e.tombstone, occurredAt: e.occurredAt, messageId: e.messageId };
  }
  return state;
}

function propertyFor(kind: StoreKind, variant: { name: string; numRuns: number; groupCommit?: 'rerun' | 'savepoint' }) {
  describe(`history on ${kind}${variant.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(kind, {
        endpoint: variant.groupCommit ? { groupCommit: { maxMessages: 8, isolation: variant.groupCommit } } : {},
        history: { data: { enabled: true } },
      });
    });
    afterAll(async () => {
      await h?.stop();
    });

    it("replays each key's applied entries to the stored state, one entry per delivery", async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(eventsArb, async (drafts) => {
          run++;
          const events: TestEvent[] = drafts.map((d, i) => ({
            id: `h${run}-m${i}`,
            key: `h${run}-${d.key}`,
            occurredAt: stamp(d.ms, 0),
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
          for (const key of new Set(events.map((e) => e.key))) {
            const { entries } = await h.bus.explain(key);
            expect(entries).toHaveLength(deliveries.filter(({ e }) => e.key === key).length);
            expect(entries.every((e) => e.outcome !== 'dead-lettered')).toBe(true);
            expect(replay(entries)).toEqual(state.get(key));
          }
        }),
        { numRuns: variant.numRuns },
      );
    });
  });
}

for (const kind of ['memory', 'sqlite', 'postgres'] as const) propertyFor(kind, { name: '', numRuns: 30 });
propertyFor('postgres', { name: ' with group commit (rerun)', numRuns: 15, groupCommit: 'rerun' });
propertyFor('sqlite', { name: ' with group commit (savepoint)', numRuns: 15, groupCommit: 'savepoint' });
propertyFor('memory', { name: ' with group commit (savepoint)', numRuns: 15, groupCommit: 'savepoint' });
