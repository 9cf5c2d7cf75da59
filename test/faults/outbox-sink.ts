import { expect } from 'vitest';
import type { Bus } from '../../src/index.js';
import { waitFor } from '../support/wait-for.js';
import type { FaultBench } from './fault-bench.js';
import { Credited } from './fault-consumer.js';

/** One copy of an event as the broker delivered it downstream. */
export interface Arrival {
  readonly id: string;
  /** The credit that published it. */
  readonly n: number;
  readonly key: string;
  /** The credit's number among the credits of its key, in commit order. */
  readonly seq: number;
}

/**
 * The downstream consumer of an `outbox` fault bench: an endpoint of the bench's bus, without an
 * inbox (so that it sees every copy the broker delivers, duplicates included) and handling one
 * message at a time (so that it sees them in the broker's order), that records each event it gets.
 * It never fails: nothing of the database's outage reaches it.
 */
export class OutboxSink {
  readonly arrivals: Arrival[] = [];

  constructor(
    bus: Bus<unknown>,
    readonly address: string,
  ) {
    bus.endpoint(address, { inbox: false, concurrency: 1 }).handle(Credited, async (event, ctx) => {
      this.arrivals.push({ id: ctx.messageId, n: event.n, key: event.key, seq: event.seq });
    });
  }

  /** Distinct events (by message id) delivered so far. */
  distinct(): number {
    return new Set(this.arrivals.map((a) => a.id)).size;
  }
}

interface EffectRow {
  readonly message_id: string;
  readonly entity_key: string | null;
  readonly seq: number | null;
}

/**
 * Waits until the outbox is empty (every row dispatched and marked: depth 0, nothing moved aside)
 * and every credit applied upstream has its event downstream. The database must be up.
 */
export async function waitForEvents(bench: FaultBench, timeoutMs = 90_000): Promise<void> {
  const sink = sinkOf(bench);
  const outbox = bench.bus.outbox;
  if (!outbox) throw new Error('the bench has no outbox');
  await waitFor(
    async () => {
      await outbox.refresh();
      const view = bench.bus.health().outbox;
      return view?.depth === 0 && sink.distinct() >= (await bench.applied());
    },
    {
      timeoutMs,
      intervalMs: 250,
      what: () =>
        `the outbox to empty and every event to arrive; outbox: ${JSON.stringify(bench.bus.health().outbox)}, ` +
        `events: ${sink.distinct()} distinct of ${sink.arrivals.length} delivered`,
    },
  );
  expect(bench.bus.health().outbox).toMatchObject({ depth: 0, movedAside: 0, movedAsideHere: 0 });
}

/**
 * Counts every event against the credits applied upstream (the effect rows): each applied credit
 * published exactly one event (one message id) that arrived downstream, no credit that was not
 * applied (poison, rolled back) published one, each event carries its credit's key and number, and
 * per key the events' first copies arrived in commit order (`seq` 1, 2, 3, ... with no gap). Copies
 * of one id delivered more than once are allowed (at least once: docs/outbox.md; a downstream inbox
 * takes each id once) and returned as `duplicates`.
 */
export async function expectEveryEventOnce(
  bench: FaultBench,
  total: number,
): Promise<{ events: number; duplicates: number }> {
  const sink = sinkOf(bench);
  const { rows } = await bench.db.query<EffectRow>(`SELECT message_id, entity_key, seq FROM ${bench.db.effects}`);
  const applied = new Map(rows.map((r) => [r.message_id, r]));
  // The first copy of each id, in the order they arrived (a Map keeps insertion order).
  const first = new Map<string, Arrival>();
  const idsOfCredit = new Map<number, Set<string>>();
  let duplicates = 0;
  for (const a of sink.arrivals) {
    if (first.has(a.id)) {
      duplicates++;
      continue;
    }
    first.set(a.id, a);
    const ids = idsOfCredit.get(a.n) ?? new Set<string>();
    ids.add(a.id);
    idsOfCredit.set(a.n, ids);
  }
  const missing: number[] = [];
  const unapplied: number[] = [];
  const publishedTwice: number[] = [];
  for (let n = 0; n < total; n++) {
    const ids = idsOfCredit.get(n)?.size ?? 0;
    if (applied.has(bench.id(n)) && ids === 0) missing.push(n);
    if (!applied.has(bench.id(n)) && ids > 0) unapplied.push(n);
    if (ids > 1) publishedTwice.push(n);
  }
  const wrong: number[] = [];
  const outOfOrder: string[] = [];
  const last = new Map<string, number>();
  for (const a of first.values()) {
    const row = applied.get(bench.id(a.n));
    if (row && (row.entity_key !== a.key || row.seq !== a.seq)) wrong.push(a.n);
    const before = last.get(a.key) ?? 0;
    if (a.seq !== before + 1) outOfOrder.push(`${a.key}: ${a.seq} after ${before}`);
    last.set(a.key, a.seq);
  }
  expect({ missing, unapplied, publishedTwice, wrong, outOfOrder: outOfOrder.slice(0, 20) }).toEqual({
    missing: [],
    unapplied: [],
    publishedTwice: [],
    wrong: [],
    outOfOrder: [],
  });
  expect(first.size).toBe(applied.size);
  return { events: first.size, duplicates };
}

function sinkOf(bench: FaultBench): OutboxSink {
  if (!bench.sink) throw new Error('the bench has no outbox sink (FaultBench.start({ outbox }))');
  return bench.sink;
}
