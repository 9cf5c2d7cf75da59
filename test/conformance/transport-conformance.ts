import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineMessage, type TransportDefinition } from '../../src/index.js';
import { createFault } from '../../src/errors/fault.js';
import { type Delivery, LockLostError, type OutgoingMessage, type Transport } from '../../src/transport/index.js';
import { waitFor } from '../support/wait-for.js';

/**
 * What a transport's test file gives the shared suite. Every case runs over a real connection to the
 * broker; nothing in the suite is specific to one transport, it reads `capabilities` instead.
 */
export interface ConformanceHarness {
  /** A new, connected transport (a new connection) to the same broker each call. */
  connect(): Promise<Transport>;
  /** The transport definition and config, for the bus-level cases (ordering). */
  readonly definition: TransportDefinition;
  readonly transportConfig: { kind: string } & Record<string, unknown>;
  /** Upper bound for one message to travel; the suite's deadlines are multiples of it. */
  readonly patienceMs?: number;
}

const silent = pino({ level: 'silent' });

function message(body: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    messageId: randomUUID(),
    body: Buffer.from(body),
    headers: { 'x-test': 'yes' },
    contentType: 'text/plain',
    key: undefined,
    messageType: 'conformance.test.v1',
    ...extra,
  };
}

function fault(reason: 'retries-exhausted' | 'schema-violation', address: string) {
  return createFault({
    reason,
    description: `conformance: ${reason}`,
    attempts: 3,
    endpoint: 'conformance',
    originalAddress: address,
    now: new Date(),
    error: new Error('boom'),
  });
}

/** Runs every case of the design's conformance list against one transport. */
export function describeTransportConformance(name: string, harness: ConformanceHarness): void {
  const patience = harness.patienceMs ?? 5_000;
  const open: Transport[] = [];
  const connect = async () => {
    const t = await harness.connect();
    open.push(t);
    return t;
  };
  const declared = async (t: Transport) => {
    const address = `conf-${randomUUID().slice(0, 8)}`;
    await t.declare({ address, endpoint: address, messageTypes: [`conf.${address}.v1`] });
    return address;
  };
  /** Collects deliveries into an array; `next()` waits for the n-th. */
  const collector = () => {
    const got: Delivery[] = [];
    return {
      got,
      onDelivery: (d: Delivery) => {
        got.push(d);
      },
      nth: async (n: number) => {
        await waitFor(() => got.length >= n, { timeoutMs: patience, what: `delivery #${n}` });
        return got[n - 1] as Delivery;
      },
    };
  };

  describe(`transport conformance: ${name}`, () => {
    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((t) => t.close()));
    });

    it('round-trips body and headers byte for byte', async () => {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      const body = Buffer.from([0, 1, 2, 255, 254, 0x7b]);
      await t.send(address, { ...message(''), body });
      const d = await c.nth(1);
      expect(Buffer.compare(d.body, body)).toBe(0);
      expect(d.headers['x-test']).toBe('yes');
      expect(d.deliveryCount).toBe(1);
      await d.complete();
    });

    it('routes a publish to every endpoint bound to its type', async () => {
      const t = await connect();
      const type = `conf.fanout-${randomUUID().slice(0, 8)}.v1`;
      const a = `conf-a-${randomUUID().slice(0, 8)}`;
      const b = `conf-b-${randomUUID().slice(0, 8)}`;
      await t.declare({ address: a, endpoint: a, messageTypes: [type] });
      await t.declare({ address: b, endpoint: b, messageTypes: [type] });
      const ca = collector();
      const cb = collector();
      await t.consume(a, ca.onDelivery, { prefetch: 10 });
      await t.consume(b, cb.onDelivery, { prefetch: 10 });
      await t.publish(message('fan-out', { messageType: type }));
      await (await ca.nth(1)).complete();
      await (await cb.nth(1)).complete();
    });

    it('complete removes the message', async () => {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      const consumer = await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('first'));
      await (await c.nth(1)).complete();
      await consumer.close({ drainTimeoutMs: patience });
      // A sentinel sent after the completion is the next thing a new consumer sees.
      await t.send(address, message('sentinel'));
      const c2 = collector();
      await t.consume(address, c2.onDelivery, { prefetch: 10 });
      const d = await c2.nth(1);
      expect(d.body.toString()).toBe('sentinel');
      await d.complete();
    });

    it('release redelivers with deliveryCount + 1', async () => {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('again'));
      const first = await c.nth(1);
      expect(first.deliveryCount).toBe(1);
      await first.release();
      const second = await c.nth(2);
      expect(second.body.toString()).toBe('again');
      expect(second.deliveryCount).toBe(2);
      await second.complete();
    });

    it('release carries merged headers to the next delivery', async () => {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('with-headers'));
      await (await c.nth(1)).release({ headers: { 'sluice-attempts': '3' } });
      const again = await c.nth(2);
      expect(again.headers['sluice-attempts']).toBe('3');
      expect(again.headers['x-test']).toBe('yes');
      await again.complete();
    });

    it('a consumer that dies without settling leaves its messages for the next consumer', async () => {
      const t1 = await connect();
      const address = await declared(t1);
      const c1 = collector();
      await t1.consume(address, c1.onDelivery, { prefetch: 10 });
      await t1.send(address, message('orphan'));
      await c1.nth(1);
      await t1.close(); // the process "dies": its connection goes away unsettled
      const t2 = await connect();
      const c2 = collector();
      await t2.consume(address, c2.onDelivery, { prefetch: 10 });
      const d = await c2.nth(1);
      expect(d.body.toString()).toBe('orphan');
      expect(d.deliveryCount).toBeGreaterThanOrEqual(2);
      await d.complete();
    });

    it('dead-letters with the reason and the original body', async () => {
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
    });

    it('redrives a dead letter back to its endpoint with the attempt count reset', async () => {
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
    });

    /** Sends `n` messages and dead-letters each; resolves with their bodies in send order. */
    const deadLettered = async (t: Transport, address: string, n: number) => {
      const c = collector();
      const consumer = await t.consume(address, c.onDelivery, { prefetch: n });
      const bodies = Array.from({ length: n }, (_, i) => `dead-${i}`);
      for (const body of bodies) await t.send(address, message(body));
      for (let i = 1; i <= n; i++) await (await c.nth(i)).deadLetter(fault('retries-exhausted', address));
      await consumer.close();
      const dlq = t.deadLetters(address);
      await waitFor(async () => (await dlq.count()) === n, { timeoutMs: patience, what: `${n} dead letters` });
      return { dlq, bodies };
    };
    const scanAll = async (dlq: ReturnType<Transport['deadLetters']>, options = {}) => {
      const pages: string[][] = [];
      for await (const page of dlq.scan(options)) pages.push(page.map((d) => d.body.toString()));
      return pages;
    };

    it('scans every dead letter in pages, oldest first, without removing any', async () => {
      const t = await connect();
      const address = await declared(t);
      const { dlq, bodies } = await deadLettered(t, address, 7);
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
    });

    it('purges the oldest by limit and chosen ids, leaving the rest in order', async () => {
      const t = await connect();
      const address = await declared(t);
      const { dlq, bodies } = await deadLettered(t, address, 6);
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
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      await dlq.redrive({ all: true }, 'after purge');
      expect((await c.nth(1)).body.toString()).toBe(bodies[2]);
      expect((await c.nth(2)).body.toString()).toBe(bodies[5]);
      expect(c.got).toHaveLength(2);
    });

    it('a delayed release waits at least the delay', async () => {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('later'));
      const first = await c.nth(1);
      const delayMs = 400;
      const releasedAt = performance.now();
      await first.release({ delayMs });
      const second = await c.nth(2);
      const waited = performance.now() - releasedAt;
      // Timers may round to the millisecond; anything earlier than that is a broken delay.
      expect(waited).toBeGreaterThanOrEqual(delayMs - 2);
      expect(second.body.toString()).toBe('later');
      await second.complete();
    });

    it('pause stops deliveries and resume restarts them', async () => {
      const t = await connect();
      const address = await declared(t);
      const paused = collector();
      const consumer = await t.consume(address, paused.onDelivery, { prefetch: 10 });
      await consumer.pause();
      // While paused, a competing consumer gets everything sent.
      const other = collector();
      const otherConsumer = await t.consume(address, other.onDelivery, { prefetch: 10 });
      await t.send(address, message('while-paused'));
      await (await other.nth(1)).complete();
      await otherConsumer.close({ drainTimeoutMs: patience });
      expect(paused.got).toHaveLength(0);
      await consumer.resume();
      await t.send(address, message('after-resume'));
      const d = await paused.nth(1);
      expect(d.body.toString()).toBe('after-resume');
      await d.complete();
    });

    it('a consumer made paused hands out nothing until resumed', async () => {
      // How a consumer made again while the kill switch holds its endpoint starts.
      const t = await connect();
      const address = await declared(t);
      const paused = collector();
      const consumer = await t.consume(address, paused.onDelivery, { prefetch: 10, paused: true });
      const other = collector();
      const otherConsumer = await t.consume(address, other.onDelivery, { prefetch: 10 });
      await t.send(address, message('while-paused'));
      await (await other.nth(1)).complete();
      await otherConsumer.close({ drainTimeoutMs: patience });
      expect(paused.got).toHaveLength(0);
      await consumer.resume();
      await t.send(address, message('after-resume'));
      const d = await paused.nth(1);
      expect(d.body.toString()).toBe('after-resume');
      await d.complete();
    });

    it('hands out up to the prefetch, and never more unsettled deliveries', async () => {
      const t = await connect();
      const address = await declared(t);
      const prefetch = 3;
      const held: Delivery[] = [];
      let holding = true;
      let unsettled = 0;
      let maxUnsettled = 0;
      let done = 0;
      const settleLater = (d: Delivery) =>
        // Settle later, giving the transport every chance to over-deliver.
        setTimeout(() => {
          unsettled--;
          d.complete().then(() => done++);
        }, 2);
      await t.consume(
        address,
        (d) => {
          unsettled++;
          maxUnsettled = Math.max(maxUnsettled, unsettled);
          if (holding) held.push(d);
          else settleLater(d);
        },
        { prefetch },
      );
      for (let i = 0; i < 40; i++) await t.send(address, message(`m${i}`));
      // Nothing settles until the consumer holds a full prefetch: the limit is not 1.
      await waitFor(() => held.length === prefetch, { timeoutMs: patience, what: `${prefetch} deliveries in flight` });
      holding = false;
      for (const d of held.splice(0)) settleLater(d);
      await waitFor(() => done === 40, { timeoutMs: patience * 2, what: '40 completions' });
      expect(maxUnsettled).toBe(prefetch);
    });

    it('close drains: a delivery settled during close is not redelivered', async () => {
      const t = await connect();
      const address = await declared(t);
      const c = collector();
      const consumer = await t.consume(address, c.onDelivery, { prefetch: 10 });
      await t.send(address, message('in-flight'));
      const d = await c.nth(1);
      const closing = consumer.close({ drainTimeoutMs: patience });
      setTimeout(() => void d.complete(), 50);
      await closing;
      await t.send(address, message('sentinel'));
      const c2 = collector();
      await t.consume(address, c2.onDelivery, { prefetch: 10 });
      expect((await c2.nth(1)).body.toString()).toBe('sentinel');
    });

    it('keeps per-key order under concurrency (through the bus)', async () => {
      const Step = defineMessage(
        `conformance.step-${randomUUID().slice(0, 8)}.v1`,
        z.object({ key: z.string(), seq: z.number() }),
      );
      const bus = createBus(
        { service: 'conformance', transport: harness.transportConfig, shutdown: { signals: [], timeoutMs: 5_000 } },
        { transports: [harness.definition], logger: silent },
      );
      const seen = new Map<string, number[]>();
      let handled = 0;
      const endpoint = `conf-order-${randomUUID().slice(0, 8)}`;
      bus
        .endpoint(endpoint, { concurrency: 16, prefetch: 64, orderBy: 'key', retry: { kind: 'none' } })
        .handle(Step, async (m) => {
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          const list = seen.get(m.key) ?? [];
          list.push(m.seq);
          seen.set(m.key, list);
          handled++;
        });
      await bus.start();
      try {
        const keys = 8;
        const perKey = 25;
        for (let seq = 0; seq < perKey; seq++) {
          for (let k = 0; k < keys; k++) await bus.send(endpoint, Step, { key: `k${k}`, seq }, { key: `k${k}` });
        }
        await waitFor(() => handled === keys * perKey, { timeoutMs: patience * 4, what: 'all steps' });
        for (const [, list] of seen) expect(list).toEqual([...list].sort((a, b) => a - b));
        expect(seen.size).toBe(keys);
      } finally {
        await bus.stop();
      }
    });

    it('10,000 messages with random failures: every id ends completed or dead-lettered, none lost', async () => {
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
    }, 300_000);
  });
}
