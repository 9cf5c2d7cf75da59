// The cost of the history (docs/explain.md): the inbox end to end on the memory transport
// (pre-filled queue), each message claimed and writing one effect row, with the history of its key
// written in the same transaction (`on`) or not (`off`), per-message and group-commit modes, on
// PostgreSQL and SQLite, interleaved in the same run; raw `pg` doing claim + effect in one
// transaction per message is the baseline the charter asks for.
//
//   npx tsx bench/history.ts [messages=5000] [runs=5] [concurrency=8] [postgres|sqlite|both] [per-message|group-commit|both]
//                            [rerun|savepoint: group commit's isolation, default rerun]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { z } from 'zod';
import {
  cloudEventsCodec,
  createBus,
  createEnvelope,
  createMemoryBroker,
  defineMessage,
  memoryTransport,
} from '../src/index.js';
import { postgresInbox, type PostgresTransaction } from '../src/inbox/postgres/index.js';
import { sqliteInbox, type SqliteTransaction } from '../src/inbox/sqlite/index.js';
import { rawInbox } from './raw-pg-inbox.js';

const total = Number(process.argv[2] ?? 5_000);
const runs = Number(process.argv[3] ?? 5);
const concurrency = Number(process.argv[4] ?? 8);
const stores = (process.argv[5] ?? 'both') === 'both' ? ['postgres', 'sqlite'] : [process.argv[5] as string];
const isolation = (process.argv[7] ?? 'rerun') as 'rerun' | 'savepoint';
if (isolation !== 'rerun' && isolation !== 'savepoint')
  throw new Error(`isolation: rerun or savepoint, got "${isolation}"`);
const URL = 'postgres://postgres@127.0.0.1:5432/test';
const Credit = defineMessage('bench.credit.v1', z.object({ account: z.string(), amount: z.number() }));
const silent = pino({ level: 'silent' });
const admin = new pg.Pool({ connectionString: URL, max: 2 });

type Mode = 'per-message' | 'group-commit';
type Store = 'postgres' | 'sqlite';

async function resetPostgres(): Promise<void> {
  await admin.query('CREATE SCHEMA IF NOT EXISTS sluice_bench');
  await admin.query(
    'DROP TABLE IF EXISTS sluice_bench.h_inbox, sluice_bench.h_inbox_versions, sluice_bench.h_history, sluice_bench.h_effects, sluice_bench.h_raw_inbox',
  );
  await admin.query(
    'CREATE TABLE sluice_bench.h_effects (message_id text NOT NULL, account text NOT NULL, amount numeric NOT NULL)',
  );
}

const batch = Array.from({ length: total }, (_, n) =>
  createEnvelope(Credit.type, 'bench', { account: `a${n % 100}`, amount: 1 }, { key: `a${n % 100}` }),
);

/** Raw pg: claim + effect in one transaction per message, the same pool size and concurrency. */
async function raw(): Promise<number> {
  await resetPostgres();
  await admin.query(`CREATE TABLE sluice_bench.h_raw_inbox (endpoint text NOT NULL, message_id text NOT NULL,
    message_type text NOT NULL, entity_key text, occurred_at text NOT NULL, received_at timestamptz NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(), outcome text NOT NULL DEFAULT 'completed', attempts integer NOT NULL,
    envelope jsonb, PRIMARY KEY (endpoint, message_id))`);
  return rawInbox(batch, {
    url: URL,
    concurrency,
    tables: { inbox: 'sluice_bench.h_raw_inbox', effects: 'sluice_bench.h_effects' },
  });
}

async function sluice(store: Store, mode: Mode, history: boolean): Promise<number> {
  const broker = createMemoryBroker();
  const address = `bench-history-${Math.random().toString(36).slice(2, 8)}`;
  const dir = store === 'sqlite' ? mkdtempSync(join(tmpdir(), 'sluice-bench-history-')) : undefined;
  if (store === 'postgres') await resetPostgres();
  const common = { shutdown: { signals: [] as [] }, history: { enabled: history, table: 'h_history' } };
  const group = mode === 'group-commit' ? { maxMessages: 100, isolation } : undefined;
  const c = group ? 200 : concurrency;
  let done = 0;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => {
    resolve = r;
  });
  const transports = [memoryTransport({ broker })];
  let bus: { start(): Promise<void>; stop(): Promise<void> };
  if (store === 'postgres') {
    const b = createBus(
      {
        ...common,
        inbox: {
          kind: 'postgres',
          connectionString: URL,
          schema: 'sluice_bench',
          table: 'h_inbox',
          poolSize: concurrency,
        },
      },
      { inbox: postgresInbox(), transports, logger: silent },
    );
    b.endpoint(address, { concurrency: c, prefetch: c * 2, groupCommit: group }).handle(Credit, async (m, ctx) => {
      await (ctx.tx as PostgresTransaction).query({
        name: 'sluice-effect',
        text: 'INSERT INTO sluice_bench.h_effects VALUES ($1, $2, $3)',
        values: [ctx.messageId, m.account, m.amount],
      });
      if (++done === total) resolve();
    });
    bus = b;
  } else {
    const b = createBus(
      { ...common, inbox: { kind: 'sqlite', path: join(dir as string, 'inbox.db'), table: 'h_inbox' } },
      { inbox: sqliteInbox(), transports, logger: silent },
    );
    let effect: { run(...values: unknown[]): unknown } | undefined;
    b.endpoint(address, { concurrency: c, prefetch: c * 2, groupCommit: group }).handle(Credit, async (m, ctx) => {
      const db = ctx.tx as SqliteTransaction;
      if (!effect) {
        db.exec(
          'CREATE TABLE IF NOT EXISTS effects (message_id TEXT NOT NULL, account TEXT NOT NULL, amount REAL NOT NULL)',
        );
        effect = db.prepare('INSERT INTO effects VALUES (?, ?, ?)');
      }
      effect.run(ctx.messageId, m.account, m.amount);
      if (++done === total) resolve();
    });
    bus = b;
  }
  const queue = broker.queue(address);
  for (const env of batch) {
    queue.enqueue({
      messageId: env.id,
      body: cloudEventsCodec.encode(env),
      headers: {},
      key: env.key,
      deliveryCount: 0,
    });
  }
  const started = performance.now();
  await bus.start();
  await finished;
  const rate = total / ((performance.now() - started) / 1000);
  await bus.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  return rate;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const rates = new Map<string, number[]>();
const add = (k: string, v: number) => rates.set(k, [...(rates.get(k) ?? []), v]);
const modes: Mode[] =
  (process.argv[6] ?? 'both') === 'both' ? ['per-message', 'group-commit'] : [process.argv[6] as Mode];
for (let i = 0; i < runs; i++) {
  if (stores.includes('postgres')) add('raw', await raw());
  for (const store of stores as Store[]) {
    for (const mode of modes) {
      // Alternate which goes first, so that a drift in the machine's load falls on both.
      const order = i % 2 === 0 ? [false, true] : [true, false];
      for (const history of order)
        add(`${store} ${mode} ${history ? 'on' : 'off'}`, await sluice(store, mode, history));
    }
  }
}
const m = (k: string) => median(rates.get(k) ?? []);
const list = (k: string) => (rates.get(k) ?? []).map(fmt).join(', ');
console.log(
  `history cost, memory transport, ${fmt(total)} messages × ${runs} runs, concurrency ${concurrency} (group commit: 200, 100 per transaction)`,
);
if (rates.has('raw'))
  console.log(`  raw pg, one transaction per message        ${fmt(m('raw')).padStart(8)} msg/s  [${list('raw')}]`);
for (const store of stores) {
  for (const mode of modes) {
    const off = `${store} ${mode} off`;
    const on = `${store} ${mode} on`;
    const vsRaw = (k: string) =>
      rates.has('raw') && store === 'postgres' ? `  vs raw ${(m(k) / m('raw')).toFixed(2)}×` : '';
    console.log(`  ${off.padEnd(40)} ${fmt(m(off)).padStart(8)} msg/s  [${list(off)}]${vsRaw(off)}`);
    console.log(
      `  ${on.padEnd(40)} ${fmt(m(on)).padStart(8)} msg/s  [${list(on)}]${vsRaw(on)}  on/off ${(m(on) / m(off)).toFixed(2)}× ` +
        `(${((1 - m(on) / m(off)) * 100).toFixed(1)}% slower)`,
    );
  }
}
await admin.end();
