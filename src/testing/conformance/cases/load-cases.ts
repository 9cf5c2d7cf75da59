import { expect } from 'vitest';
import { type Delivery, LockLostError } from '../../../transport-core/index.js';
import { type ConformanceCase, fault, message } from '../conformance-case.js';
import { waitFor } from '../wait-for.js';

/** Many messages, random settlements: nothing lost. */
export const loadCases: readonly ConformanceCase[] = [
  {
    name: '10,000 messages with random failures: every id ends completed or dead-lettered, none lost',
    timeoutMs: 300_000,
    async run({ connect, declared, patience }) {
      const t = await connect();
      const address = await declared(t);
      const total = 10_000;
      const completed = new Set<string>();
      const deadLettered = new Set<string>();
      const idOf = (d: Delivery) => d.body.toString();
      // A lock that expired under load (the Service Bus emulator's are 1.5 s) refuses the settlement
      // and the broker hands the message out again: that is the broker keeping its promise, not a
      // failure. Anything else is one, and is asserted at the end.
      const unexpected: unknown[] = [];
      const settled = (settlement: Promise<void>, then?: () => void) => {
        settlement.then(then, (error: unknown) => {
          if (!(error instanceof LockLostError)) unexpected.push(error);
        });
      };
      let rng = 42;
      const random = () => {
        rng = (rng * 1103515245 + 12345) % 2 ** 31;
        return rng / 2 ** 31;
      };
      await t.consume(
        address,
        (d) => {
          const roll = random();
          const id = idOf(d);
          if (roll < 0.8) settled(d.complete(), () => completed.add(id));
          else if (roll < 0.95) settled(d.release());
          else settled(d.deadLetter(fault('retries-exhausted', address)), () => deadLettered.add(id));
        },
        { prefetch: 100 },
      );
      // 100 sends in flight at a time: one by one, confirmed sends alone took over a minute on a loaded box.
      for (let start = 0; start < total; start += 100) {
        const ids = Array.from({ length: Math.min(100, total - start) }, (_, k) => `id-${start + k}`);
        await Promise.all(ids.map((id) => t.send(address, message(id))));
      }
      // Bounded by progress, not by a speed: it fails when nothing settled for a while, however
      // slowly a loaded machine gets through the 10,000.
      let last = -1;
      let lastChange = Date.now();
      await waitFor(
        () => {
          const now = completed.size + deadLettered.size;
          if (now !== last) {
            last = now;
            lastChange = Date.now();
          } else if (Date.now() - lastChange > patience * 4) {
            throw new Error(`no settlement for ${patience * 4} ms; ${now} of ${total} settled`);
          }
          return now >= total;
        },
        { timeoutMs: 280_000, intervalMs: 50, what: 'all settled' },
      );
      expect(unexpected).toEqual([]);
      const dlq = t.deadLetters(address);
      await waitFor(async () => (await dlq.count()) === deadLettered.size, {
        timeoutMs: patience,
        what: 'dead letters',
      });
      for (let i = 0; i < total; i++) {
        const id = `id-${i}`;
        expect(completed.has(id) !== deadLettered.has(id), id).toBe(true);
      }
      expect(deadLettered.size).toBeGreaterThan(0);
    },
  },
];
