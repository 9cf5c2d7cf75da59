// End-to-end throughput with the PostgreSQL inbox on the memory transport: Sluice (one inbox
// transaction per message: claim + the handler's effect INSERT) against raw `pg` doing the same
// claim + effect in one transaction per message, same pool size and concurrency, in the same run.
//
//   npx tsx bench/inbox.ts [messages=5000] [runs=3] [concurrency=8] [memory|rabbitmq] [--build dist]
//     [--against <checkout>]
// `--build dist`: Sluice from the compiled `dist/` (what users run; `npm run build` first).
// `--against <checkout>` (memory transport only): every mode also runs on another checkout's compiled
// build (a worktree of an earlier commit, built), in this process, the two trees alternating run by
// run, and the ratio of each mode's median is printed (issue 18: no inbox mode may get slower;
// separate processes differed by ±10 % here, the raw side included).
import { parseArgs } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { z } from 'zod';
import { cloudEventsCodec, createEnvelope, type createMemoryBroker, defineMessage } from '../src/index.js';
import { withTimeout } from '../src/internal/abort.js';
import { systemClock } from '../src/transport-core/index.js';
import { rabbitmqTransport } from '../transports/rabbitmq/index.js';
import { deleteTopology } from '../test/integration/rabbitmq/rabbitmq-test-kit.js';
import { loadCore, loadCoreAt, loadPostgresInbox, loadPostgresInboxAt, parseBuild } from './load-sluice.js';
import { rawInbox } from './raw-pg-inbox.js';

const { values, positionals } = parseArgs({
  options: { build: { type: 'string' }, against: { type: 'string' } },
  allowPositionals: true,
});
const againstPath = values.against;
const build = parseBuild(values.build);
const total = Number(positionals[0] ?? 5_000);
const runs = Number(positionals[1] ?? 3);
const concurrency = Number(positionals[2] ?? 8);
/** `memory` (pre-filled in-process queue) or `rabbitmq` (a pre-filled quorum queue on 127.0.0.1). */
const transportKind = (positionals[3] ?? 'memory') as 'memory' | 'rabbitmq';
if ((build === 'dist' || againstPath !== undefined) && transportKind !== 'memory') {
  throw new Error("--build dist and --against run on the memory transport only (the RabbitMQ one is this tree's src)");
}
const URL = 'postgres://postgres@127.0.0.1:5432/test';
const Credit = defineMessage('bench.credit.v1', z.object({ account: z.string(), amount: z.number() }));
const silent = pino({ level: 'silent' });
const admin = new pg.Pool({ connectionString: URL, max: 2 });

async function resetTables(): Promise<void> {
  await admin.query('CREATE SCHEMA IF NOT EXISTS sluice_bench');
  await admin.query(
    'DROP TABLE IF EXISTS sluice_bench.inbox, sluice_bench.inbox_versions, sluice_bench.raw_inbox, sluice_bench.effects',
  );
  await admin.query(`CREATE TABLE sluice_bench.raw_inbox (endpoint text NOT NULL, message_id text NOT NULL,
    message_type text NOT NULL, entity_key text, occurred_at text NOT NULL, received_at timestamptz NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(), outcome text NOT NULL DEFAULT 'completed', attempts integer NOT NULL,
    envelope jsonb, PRIMARY KEY (endpoint, message_id))`);
  await admin.query(
    'CREATE TABLE sluice_bench.effects (message_id text NOT NULL, account text NOT NULL, amount numeric NOT NULL)',
  );
}

function envelopes() {
  // One millisecond apart: with the ordering guard on, an event stamped no later than the last one
  // applied for its key is stale (skipped, never handled), and the run would not end.
  const base = Date.now() - total;
  return Array.from({ length: total }, (_, n) =>
    createEnvelope(
      Credit.type,
      'bench',
      { account: `a${n % 100}`, amount: 1 },
      { key: `a${n % 100}`, occurredAt: new Date(base + n) },
    ),
  );
}

async function raw(batch: ReturnType<typeof envelopes>): Promise<number> {
  await resetTables();
  return rawInbox(batch, {
    url: URL,
    concurrency,
    tables: { inbox: 'sluice_bench.raw_inbox', effects: 'sluice_bench.effects' },
  });
}

/** `ordered`: per message with the ordering guard on (the key's last applied version read and written in the transaction). */
type Mode = 'per-message' | 'ordered' | 'group-rerun' | 'group-savepoint' | 'batch-handler';

/** A build of Sluice to run (this checkout's, or `--against`'s), with its own message contract. */
interface SluiceBuild {
  readonly core: typeof import('../src/index.js');
  readonly inbox: typeof import('../src/inbox/postgres/index.js');
  readonly credit: typeof Credit;
}

function buildOf(core: SluiceBuild['core'], inbox: SluiceBuild['inbox']): SluiceBuild {
  return { core, inbox, credit: core.defineMessage(Credit.type, Credit.schema) };
}

const thisBuild = buildOf(await loadCore(build), await loadPostgresInbox(build));

async function sluice(
  batch: ReturnType<typeof envelopes>,
  mode: Mode = 'per-message',
  { core, inbox, credit }: SluiceBuild = thisBuild,
): Promise<number> {
  await resetTables();
  const broker = core.createMemoryBroker();
  const address = `bench-inbox-${Math.random().toString(36).slice(2, 8)}`;
  const bus = core.createBus(
    {
      shutdown: { signals: [] },
      transport: transportKind === 'rabbitmq' ? { kind: 'rabbitmq', queueType: 'quorum' } : { kind: 'memory' },
      inbox: { kind: 'postgres', connectionString: URL, schema: 'sluice_bench', table: 'inbox', poolSize: concurrency },
    },
    {
      inbox: inbox.postgresInbox(),
      transports: transportKind === 'rabbitmq' ? [rabbitmqTransport()] : [core.memoryTransport({ broker })],
      logger: silent,
    },
  );
  let done = 0;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => {
    resolve = r;
  });
  if (mode === 'batch-handler') {
    bus.endpoint(address, { concurrency: 200, prefetch: 400 }).handleBatch(
      credit,
      async (credits, ctx) => {
        await ctx.tx.query({
          name: 'sluice-batch-effect',
          text: 'INSERT INTO sluice_bench.effects SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[])',
          values: [ctx.envelopes.map((e) => e.id), credits.map((c) => c.account), credits.map((c) => c.amount)],
        });
        done += credits.length;
        if (done === total) resolve();
      },
      { maxMessages: 100, maxWaitMs: 2 },
    );
  } else {
    const isolation = mode === 'group-rerun' ? ('rerun' as const) : ('savepoint' as const);
    const group = mode === 'per-message' || mode === 'ordered' ? undefined : { maxMessages: 100, isolation };
    const c = group ? 200 : concurrency;
    const ordering = { enabled: mode === 'ordered' };
    bus
      .endpoint(address, { concurrency: c, prefetch: c * 2, groupCommit: group, ordering })
      .handle(credit, async (m, ctx) => {
        await ctx.tx.query({
          name: 'sluice-effect',
          text: 'INSERT INTO sluice_bench.effects VALUES ($1, $2, $3)',
          values: [ctx.messageId, m.account, m.amount],
        });
        if (++done === total) resolve();
      });
  }
  await prefill(address, batch, broker);
  const started = performance.now();
  await bus.start();
  // A run that stops short says so instead of hanging the bench.
  await withTimeout(finished, 300_000, () => new Error(`${mode}: ${done} of ${total} messages handled after 300 s`));
  const rate = total / ((performance.now() - started) / 1000);
  await bus.stop();
  if (transportKind === 'rabbitmq') await deleteTopology([{ address, endpoint: address, messageTypes: [Credit.type] }]);
  return rate;
}

/** Puts every message on the endpoint's queue before the consuming bus starts. */
async function prefill(
  address: string,
  batch: ReturnType<typeof envelopes>,
  broker: ReturnType<typeof createMemoryBroker>,
) {
  const messages = batch.map((env) => ({
    messageId: env.id,
    body: cloudEventsCodec.encode(env),
    headers: {},
    contentType: cloudEventsCodec.contentType,
    key: env.key,
    messageType: Credit.type,
  }));
  if (transportKind === 'memory') {
    const queue = broker.queue(address);
    for (const m of messages)
      queue.enqueue({ messageId: m.messageId, body: m.body, headers: {}, key: m.key, deliveryCount: 0 });
    return;
  }
  const definition = rabbitmqTransport();
  const transport = definition.create(definition.configSchema.parse({ kind: 'rabbitmq', queueType: 'quorum' }), {
    logger: silent,
    clock: systemClock,
  });
  await transport.connect();
  await transport.declare({ address, endpoint: address, messageTypes: [Credit.type] });
  for (let i = 0; i < messages.length; i += 500) {
    await Promise.all(messages.slice(i, i + 500).map((m) => transport.send(address, m)));
  }
  await transport.close();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const batch = envelopes();
const modes: Mode[] = ['per-message', 'ordered', 'group-rerun', 'group-savepoint', 'batch-handler'];
const against =
  againstPath === undefined
    ? undefined
    : buildOf(await loadCoreAt(againstPath), await loadPostgresInboxAt(againstPath));
const rates = new Map<string, number[]>([
  ['raw', []],
  ...[...modes, ...modes.map((m) => `against ${m}`)].map((m) => [m, []] as [string, number[]]),
]);
for (let i = 0; i < runs; i++) {
  rates.get('raw')?.push(await raw(batch));
  // With --against the two trees alternate which runs first, mode by mode.
  for (const mode of modes) {
    const order = against ? (i % 2 === 0 ? [thisBuild, against] : [against, thisBuild]) : [thisBuild];
    for (const tree of order) {
      rates.get(tree === thisBuild ? mode : `against ${mode}`)?.push(await sluice(batch, mode, tree));
    }
  }
}
const m = (k: string) => median(rates.get(k) ?? []);
const list = (k: string) => (rates.get(k) ?? []).map(fmt).join(', ');
console.log(
  `inbox on PostgreSQL, ${transportKind} transport, ${fmt(total)} messages × ${runs} runs, pool ${concurrency}, build ${build}`,
);
console.log(`  raw pg, one transaction per message   ${fmt(m('raw')).padStart(8)} msg/s  [${list('raw')}]`);
for (const mode of modes) {
  console.log(
    `  sluice ${mode.padEnd(30)} ${fmt(m(mode)).padStart(8)} msg/s  [${list(mode)}]  ` +
      `vs raw ${(m(mode) / m('raw')).toFixed(2)}×  vs sluice per-message ${(m(mode) / m('per-message')).toFixed(2)}×`,
  );
}
if (againstPath !== undefined) {
  console.log(`  against ${againstPath} (its compiled build, alternating with this tree in this process):`);
  for (const mode of modes) {
    const key = `against ${mode}`;
    console.log(
      `  against ${mode.padEnd(29)} ${fmt(m(key)).padStart(8)} msg/s  [${list(key)}]  ` +
        `vs raw ${(m(key) / m('raw')).toFixed(2)}×  this tree / against ${(m(mode) / m(key)).toFixed(2)}×`,
    );
  }
}
await admin.end();
