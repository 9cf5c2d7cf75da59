import { expect } from 'vitest';
import type { DeadLetterQueue, DeadLetterScanOptions, Transport } from '../../../transport-core/index.js';
import { type CaseContext, type ConformanceCase, fault, message } from '../conformance-case.js';
import { waitFor } from '../wait-for.js';

/** Sends `n` messages and dead-letters each; resolves with their bodies in send order. */
async function deadLettered({ collector, patience }: CaseContext, t: Transport, address: string, n: number) {
  const c = collector();
  const consumer = await t.consume(address, c.onDelivery, { prefetch: n });
  const bodies = Array.from({ length: n }, (_, i) => `dead-${i}`);
  for (const body of bodies) await t.send(address, message(body));
  for (let i = 1; i <= n; i++) await (await c.nth(i)).deadLetter(fault('retries-exhausted', address));
  await consumer.close();
  const dlq = t.deadLetters(address);
  await waitFor(async () => (await dlq.count()) === n, { timeoutMs: patience, what: `${n} dead letters` });
  return { dlq, bodies };
}

async function scanAll(dlq: DeadLetterQueue, options: DeadLetterScanOptions = {}): Promise<string[][]> {
  const pages: string[][] = [];
  for await (const page of dlq.scan(options)) pages.push(page.map((d) => d.body.toString()));
  return pages;
}

/** Dead-lettering, and reading, redriving and purging the dead-letter queue. */
export const deadLetterCases: readonly ConformanceCase[] = [
  {
    name: 'dead-letters with the reason and the original body',
    async run({ connect, declared, collector, patience }) {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      const body = Buffer.from('{"not":"valid"');
      await t.send(address, { ...message(''), body });
      await (await c.nth(1)).deadLetter(fault('schema-violation', address));
      const dlq = t.deadLetters(address);
      await waitFor(async () => (await dlq.count()) === 1, { timeoutMs: patience, what: 'dead letter' });
      const [dead] = await dlq.peek(10);
      expect(dead?.fault?.reason).toBe('schema-violation');
      expect(dead?.fault?.description).toBe('conformance: schema-violation');
      expect(dead?.headers['x-test']).toBe('yes');
      expect(Buffer.compare(dead?.body ?? Buffer.alloc(0), body)).toBe(0);
    },
  },
  {
    name: 'redrives a dead letter back to its endpoint with the attempt count reset',
    needs: ['deadLetterManagement'],
    async run({ connect, declared, collector, patience }) {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('redrive-me', { headers: { 'sluice-attempts': '5' } }));
      await (await c.nth(1)).deadLetter(fault('retries-exhausted', address));
      const dlq = t.deadLetters(address);
      await waitFor(async () => (await dlq.count()) === 1, { timeoutMs: patience, what: 'dead letter' });
      const result = await dlq.redrive({ all: true }, 'fixed the bug');
      expect(result.moved).toBe(1);
      const back = await c.nth(2);
      expect(back.body.toString()).toBe('redrive-me');
      expect(back.headers['sluice-attempts']).toBeUndefined();
      expect(back.headers['sluice-fault-reason']).toBeUndefined();
      expect(back.headers['sluice-redrive-reason']).toBe('fixed the bug');
      expect(back.headers['sluice-redriven-at']).toMatch(/Z$/);
      await back.complete();
      expect(await dlq.count()).toBe(0);
    },
  },
  {
    name: 'scans every dead letter in pages, oldest first, without removing any',
    needs: ['deadLetterManagement'],
    async run(context) {
      const t = await context.connect();
      const address = await context.declared(t);
      const { dlq, bodies } = await deadLettered(context, t, address, 7);
      const pages = await scanAll(dlq, { pageSize: 3 });
      expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
      expect(pages.flat()).toEqual(bodies);
      expect((await scanAll(dlq, { pageSize: 5, max: 4 })).flat()).toEqual(bodies.slice(0, 4));
      // A scan left early lets go of what it read.
      for await (const page of dlq.scan({ pageSize: 2 })) {
        expect(page).toHaveLength(2);
        break;
      }
      expect(await dlq.count()).toBe(7);
      expect((await scanAll(dlq)).flat()).toEqual(bodies);
    },
  },
  {
    name: 'purges the oldest by limit and chosen ids, leaving the rest in order',
    needs: ['deadLetterManagement'],
    async run(context) {
      const t = await context.connect();
      const address = await context.declared(t);
      const { dlq, bodies } = await deadLettered(context, t, address, 6);
      const byLimit = await dlq.purge({ limit: 2 });
      expect(byLimit.removed).toBe(2);
      expect((await scanAll(dlq)).flat()).toEqual(bodies.slice(2));
      const ids = (await dlq.peek(10)).map((d) => d.deadLetterId);
      expect(new Set(ids).size).toBe(4);
      const byIds = await dlq.purge({ ids: [ids[1] as string, ids[2] as string, 'no-such-id'] });
      expect(byIds.removed).toBe(2);
      expect((await scanAll(dlq)).flat()).toEqual([bodies[2], bodies[5]]);
      expect(await dlq.count()).toBe(2);
      // Nothing reached the endpoint: a purge copies nowhere.
      const c = context.collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      await dlq.redrive({ all: true }, 'after purge');
      expect((await c.nth(1)).body.toString()).toBe(bodies[2]);
      expect((await c.nth(2)).body.toString()).toBe(bodies[5]);
      expect(c.got).toHaveLength(2);
    },
  },
  {
    name: 'redrives the oldest by limit and chosen ids (dead-letter or message ids), leaving the rest in order',
    needs: ['deadLetterManagement'],
    async run(context) {
      const t = await context.connect();
      const address = await context.declared(t);
      const { dlq, bodies } = await deadLettered(context, t, address, 6);
      const c = context.collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      const byLimit = await dlq.redrive({ limit: 2 }, 'first two');
      expect(byLimit.moved).toBe(2);
      expect((await c.nth(1)).body.toString()).toBe(bodies[0]);
      expect((await c.nth(2)).body.toString()).toBe(bodies[1]);
      const left = await dlq.peek(10);
      expect(left.map((d) => d.body.toString())).toEqual(bodies.slice(2));
      const byIds = await dlq.redrive(
        {
          ids: [
            (left[1] as { deadLetterId: string }).deadLetterId,
            (left[3] as { messageId: string }).messageId,
            'no-such-id',
          ],
        },
        'chosen',
      );
      expect(byIds.moved).toBe(2);
      const back = [(await c.nth(3)).body.toString(), (await c.nth(4)).body.toString()].sort();
      expect(back).toEqual([bodies[3], bodies[5]].sort());
      expect((await scanAll(dlq)).flat()).toEqual([bodies[2], bodies[4]]);
      for (const d of c.got) await d.complete();
      expect(c.got).toHaveLength(4);
    },
  },
];
