// The transactional outbox on RabbitMQ + PostgreSQL: a handler that consumes one message, writes one
// effect row and publishes one event. In the same run:
//   - raw amqplib + pg doing the same work as a naive dual write (commit, then a confirmed publish);
//   - Sluice with immediate publish (`outbox: false`: the event goes out inside the handler);
//   - Sluice with the outbox (written in the inbox transaction, dispatched after the commit);
//   - raw amqplib + pg in batches of 100 (the same naive dual write, one transaction per batch): this
//     box's ceiling for the batch mode;
//   - Sluice with the outbox and a batch handler (100 messages per transaction);
// each checked at the end: every event on the sink queue exactly once. Then the latency from a
// commit (`bus.transaction` returning) to the broker's confirmation of its message: in process, and
// through a relay in another process woken by NOTIFY (this process's own dispatch stopped).
//
//   npx tsx bench/outbox.ts [messages=10000] [runs=3] [latencySamples=2000] [modes=raw,immediate,outbox,raw-batch,outbox-batch] [keys=100]
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import pg from 'pg';
import pino from 'pino';
import { z } from 'zod';
import {
  type Bus,
  cloudEventsCodec,
  createBus,
  createEnvelope,
  defineMessage,
  type TransportDefinition,
} from '../src/index.js';
import { postgresInbox, type PostgresTransaction } from '../src/inbox/postgres/index.js';
import { systemClock } from '../src/transport-core/index.js';
import { rabbitmqTransport } from '../transports/rabbitmq/index.js';
import { deleteTopology } from '../test/integration/rabbitmq/rabbitmq-test-kit.js';
import { cpuPerMessage, type CpuSample, sampleCpu } from './server-cpu.js';

const total = Number(process.argv[2] ?? 10_000);
const runs = Number(process.argv[3] ?? 3);
const samples = Number(process.argv[4] ?? 2_000);
/** Which throughput modes to run (all by default), e.g. `immediate,outbox`; `none` skips them. */
const only = process.argv[5]?.split(',');
/** Distinct keys (accounts) among the messages; each event is keyed by its account. */
const keys = Number(process.argv[6] ?? 100);
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const SCHEMA = 'sluice_bench';
const POOL = 8;
/** Batch modes: messages per batch, and the prefetch that keeps several batches in flight. */
const BATCH_SIZE = 100;
const BATCH_PREFETCH = 1_000;
const Charge = defineMessage('bench.outbox.charge.v1', z.object({ account: z.string(), amount: z.number() }));
const Charged = defineMessage('bench.outbox.charged.v1', z.object({ account: z.string(), amount: z.number() }));
const silent = pino({ level: 'silent' });
const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
const suffix = () => Math.random().toString(36).slice(2, 8);
/** The servers whose CPU per message is reported beside the rates (on a busy box, the steadier figure). */
const SERVERS = ['postgres', 'beam.smp'] as const;
const cpuByMode = new Map<string, Record<string, number>[]>();
function recordCpu(mode: string, before: CpuSample): void {
  const list = cpuByMode.get(mode) ?? [];
  list.push(cpuPerMessage(before, sampleCpu(SERVERS), total));
  cpuByMode.set(mode, list);
}

async function resetTables(): Promise<void> {
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
  await admin.query(`DROP TABLE IF EXISTS ${SCHEMA}.ob_inbox, ${SCHEMA}.ob_inbox_versions, ${SCHEMA}.ob_outbox,
    ${SCHEMA}.ob_effects`);
  await admin.query(
    `CREATE TABLE ${SCHEMA}.ob_effects (message_id text NOT NULL, account text NOT NULL, amount numeric NOT NULL)`,
  );
}

const envelopes = () =>
  Array.from({ length: total }, (_, n) =>
    createEnvelope(Charge.type, 'bench', { account: `a${n % keys}`, amount: 1 }, { key: `a${n % keys}` }),
  );

/** Puts every message on `queue` (declared as an endpoint of Charge) before anything consumes. */
async function prefill(queue: string, batch: ReturnType<typeof envelopes>): Promise<void> {
  const definition = rabbitmqTransport();
  const transport = definition.create(definition.configSchema.parse({ kind: 'rabbitmq' }), {
    logger: silent,
    clock: systemClock,
  });
  await transport.connect();
  await transport.declare({ address: queue, endpoint: queue, messageTypes: [Charge.type] });
  const messages = batch.map((env) => ({
    messageId: env.id,
    body: cloudEventsCodec.encode(env),
    headers: {},
    contentType: cloudEventsCodec.contentType,
    key: env.key,
    messageType: Charge.type,
  }));
  for (let i = 0; i < messages.length; i += 500) {
    await Promise.all(messages.slice(i, i + 500).map((m) => transport.send(queue, m)));
  }
  await transport.close();
}

/** Declares a queue bound to Charged's exchange (what a subscriber would do); counts it at the end. */
async function sink(): Promise<{ queue: string; count: () => Promise<number>; remove: () => Promise<void> }> {
  const queue = `bench-outbox-sink-${suffix()}`;
  const definition = rabbitmqTransport();
  const transport = definition.create(definition.configSchema.parse({ kind: 'rabbitmq' }), {
    logger: silent,
    clock: systemClock,
  });
  await transport.connect();
  await transport.declare({ address: queue, endpoint: queue, messageTypes: [Charged.type] });
  await transport.close();
  return {
    queue,
    count: async () => {
      const connection = await amqp.connect(AMQP_URL);
      const channel = await connection.createChannel();
      const { messageCount } = await channel.checkQueue(queue);
      await connection.close();
      return messageCount;
    },
    remove: () => deleteTopology([{ address: queue, endpoint: queue, messageTypes: [Charged.type] }]),
  };
}

/** Raw amqplib + pg: consume, insert the effect and commit, then publish with a confirm, then ack. */
async function raw(batch: ReturnType<typeof envelopes>): Promise<number> {
  await resetTables();
  const inQueue = `bench-outbox-raw-${suffix()}`;
  const out = await sink();
  await prefill(inQueue, batch);
  const pool = new pg.Pool({ connectionString: PG_URL, max: POOL });
  const connection = await amqp.connect(AMQP_URL);
  const consume = await connection.createChannel();
  const publish = await connection.createConfirmChannel();
  await consume.prefetch(POOL * 2);
  let done = 0;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => {
    resolve = r;
  });
  const started = performance.now();
  const cpu = sampleCpu(SERVERS);
  await consume.consume(inQueue, (msg) => {
    if (!msg) return;
    void (async () => {
      const env = JSON.parse(msg.content.toString()) as { id: string; data: { account: string; amount: number } };
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query({
          name: 'raw-effect',
          text: `INSERT INTO ${SCHEMA}.ob_effects VALUES ($1, $2, $3)`,
          values: [env.id, env.data.account, env.data.amount],
        });
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      const event = createEnvelope(Charged.type, 'bench', env.data, { key: env.data.account });
      await new Promise<void>((ok, fail) =>
        publish.publish(Charged.type, '', cloudEventsCodec.encode(event), { persistent: true }, (e) =>
          e ? fail(e) : ok(),
        ),
      );
      consume.ack(msg);
      if (++done === total) resolve();
    })();
  });
  await finished;
  const rate = total / ((performance.now() - started) / 1000);
  recordCpu('raw', cpu);
  await connection.close();
  await pool.end();
  await check(out, 'raw');
  await deleteTopology([{ address: inQueue, endpoint: inQueue, messageTypes: [Charge.type] }]);
  return rate;
}

/**
 * Raw amqplib + pg in batches, the ceiling of this box for the batch mode: consume with a large
 * prefetch, take up to 100 messages (or what came within 2 ms), insert their effects in one
 * transaction, commit, publish their events with confirms, then ack them. Up to `POOL` batches at once.
 */
async function rawBatch(batch: ReturnType<typeof envelopes>): Promise<number> {
  await resetTables();
  const inQueue = `bench-outbox-rawb-${suffix()}`;
  const out = await sink();
  await prefill(inQueue, batch);
  const pool = new pg.Pool({ connectionString: PG_URL, max: POOL });
  const connection = await amqp.connect(AMQP_URL);
  const consume = await connection.createChannel();
  const publish = await connection.createConfirmChannel();
  await consume.prefetch(BATCH_PREFETCH);
  let done = 0;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => {
    resolve = r;
  });
  let waiting: amqp.ConsumeMessage[] = [];
  let timer: NodeJS.Timeout | undefined;
  const run = async (messages: amqp.ConsumeMessage[]) => {
    const envs = messages.map(
      (msg) => JSON.parse(msg.content.toString()) as { id: string; data: { account: string; amount: number } },
    );
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query({
        name: 'raw-batch-effect',
        text: `INSERT INTO ${SCHEMA}.ob_effects SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[])`,
        values: [envs.map((e) => e.id), envs.map((e) => e.data.account), envs.map((e) => e.data.amount)],
      });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    for (const env of envs) {
      const event = createEnvelope(Charged.type, 'bench', env.data, { key: env.data.account });
      publish.publish(Charged.type, '', cloudEventsCodec.encode(event), { persistent: true });
    }
    await publish.waitForConfirms();
    for (const msg of messages) consume.ack(msg);
    done += messages.length;
    if (done === total) resolve();
  };
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    const messages = waiting;
    waiting = [];
    if (messages.length > 0) void run(messages);
  };
  const started = performance.now();
  const cpu = sampleCpu(SERVERS);
  await consume.consume(inQueue, (msg) => {
    if (!msg) return;
    waiting.push(msg);
    if (waiting.length >= BATCH_SIZE) flush();
    else timer ??= setTimeout(flush, 2);
  });
  await finished;
  const rate = total / ((performance.now() - started) / 1000);
  recordCpu('raw-batch', cpu);
  await connection.close();
  await pool.end();
  await check(out, 'raw-batch');
  await deleteTopology([{ address: inQueue, endpoint: inQueue, messageTypes: [Charge.type] }]);
  return rate;
}

async function check(out: Awaited<ReturnType<typeof sink>>, what: string): Promise<void> {
  // Confirmed publishes are on the queue; give the broker a moment to count the last ones.
  let n = 0;
  for (let i = 0; i < 50 && n < total; i++) {
    n = await out.count();
    if (n < total) await new Promise((r) => setTimeout(r, 100));
  }
  if (n !== total) throw new Error(`${what}: ${n} events on the sink queue, expected exactly ${total}`);
  await out.remove();
}

type Mode = 'immediate' | 'outbox' | 'outbox-batch';

function sluiceBus(extra: object = {}): Bus<PostgresTransaction> {
  return createBus(
    {
      shutdown: { signals: [] },
      transport: { kind: 'rabbitmq' },
      inbox: { kind: 'postgres', connectionString: PG_URL, schema: SCHEMA, table: 'ob_inbox', poolSize: POOL },
      outbox: { table: 'ob_outbox', retentionMs: 0 },
      ...extra,
    },
    { inbox: postgresInbox(), transports: [rabbitmqTransport()], logger: silent },
  );
}

async function sluice(batch: ReturnType<typeof envelopes>, mode: Mode): Promise<number> {
  await resetTables();
  const queue = `bench-outbox-${mode}-${suffix()}`;
  const out = await sink();
  await prefill(queue, batch);
  const bus = sluiceBus();
  let done = 0;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => {
    resolve = r;
  });
  if (mode === 'outbox-batch') {
    bus.endpoint(queue, { concurrency: BATCH_PREFETCH, prefetch: BATCH_PREFETCH }).handleBatch(
      Charge,
      async (charges, ctx) => {
        await ctx.tx.query({
          name: 'sluice-batch-effect',
          text: `INSERT INTO ${SCHEMA}.ob_effects SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[])`,
          values: [ctx.envelopes.map((e) => e.id), charges.map((c) => c.account), charges.map((c) => c.amount)],
        });
        for (const c of charges) await ctx.publish(Charged, c, { key: c.account });
      },
      { maxMessages: BATCH_SIZE, maxWaitMs: 2 },
    );
  } else {
    bus
      .endpoint(queue, { concurrency: POOL, prefetch: POOL * 2, outbox: mode === 'outbox' })
      .handle(Charge, async (m, ctx) => {
        await ctx.tx.query({
          name: 'sluice-effect',
          text: `INSERT INTO ${SCHEMA}.ob_effects VALUES ($1, $2, $3)`,
          values: [ctx.messageId, m.account, m.amount],
        });
        await ctx.publish(Charged, m, { key: m.account });
      });
  }
  const started = performance.now();
  const cpu = sampleCpu(SERVERS);
  await bus.start();
  // Consumed and published: every delivery of the endpoint completed (its events confirmed first).
  const poll = setInterval(() => {
    done = bus.health().endpoints[queue]?.counters.completed ?? 0;
    if (done >= total) resolve();
  }, 2);
  await finished;
  clearInterval(poll);
  // ... and every event out of the outbox (rows of a key wait for the key's earlier rows).
  while (bus.outbox && mode !== 'immediate' && (await bus.outbox.store.stats()).depth > 0) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const rate = total / ((performance.now() - started) / 1000);
  recordCpu(mode, cpu);
  await bus.stop();
  await check(out, `sluice ${mode}`);
  await deleteTopology([{ address: queue, endpoint: queue, messageTypes: [Charge.type] }]);
  return rate;
}

/** A transport that records when the broker confirmed each message (by id). */
function timedRabbitmq(confirmed: Map<string, number>): TransportDefinition {
  const base = rabbitmqTransport() as TransportDefinition;
  return {
    ...base,
    create(config, deps) {
      const t = base.create(config, deps);
      const publish = t.publish.bind(t);
      t.publish = async (m) => {
        await publish(m);
        confirmed.set(m.messageId, performance.timeOrigin + performance.now());
      };
      return t;
    },
  };
}

const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] as number;

async function latencyInProcess(): Promise<number[]> {
  await resetTables();
  const out = await sink();
  const confirmed = new Map<string, number>();
  const bus = createBus(
    {
      shutdown: { signals: [] },
      transport: { kind: 'rabbitmq' },
      inbox: { kind: 'postgres', connectionString: PG_URL, schema: SCHEMA, table: 'ob_inbox', poolSize: POOL },
      outbox: { table: 'ob_outbox', retentionMs: 0 },
    },
    { inbox: postgresInbox(), transports: [timedRabbitmq(confirmed)], logger: silent },
  );
  bus.endpoint(`bench-outbox-idle-${suffix()}`, { inbox: false }).handle(Charge, async () => {});
  await bus.start();
  const committed = new Map<string, number>();
  for (let i = 0; i < samples; i++) {
    const id = await bus.transaction(async ({ tx, publish }) => {
      await tx.query(`INSERT INTO ${SCHEMA}.ob_effects VALUES ('x', 'a', 1)`);
      return publish(Charged, { account: `a${i % 10}`, amount: 1 }, { key: `a${i % 10}` });
    });
    committed.set(id, performance.timeOrigin + performance.now());
    // One in flight at a time: the latency of one commit, not of a queue behind it.
    while (!confirmed.has(id)) await new Promise((r) => setImmediate(r));
  }
  await bus.stop();
  await out.remove();
  return [...committed].map(([id, at]) => (confirmed.get(id) as number) - at);
}

async function latencyThroughRelay(): Promise<number[]> {
  await resetTables();
  const out = await sink();
  const relayScript = fileURLToPath(new URL('./outbox-relay.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', relayScript], { stdio: ['ignore', 'pipe', 'inherit'] });
  const confirmed = new Map<string, number>();
  let buffer = '';
  let ready!: () => void;
  const isReady = new Promise<void>((r) => {
    ready = r;
  });
  child.stdout?.on('data', (chunk) => {
    buffer += String(chunk);
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line === 'READY') ready();
      else {
        const [id, at] = line.split(' ');
        if (id && at) confirmed.set(id, Number(at));
      }
    }
  });
  await isReady;
  const writer = sluiceBus({ outbox: { table: 'ob_outbox', retentionMs: 0, backupPollIntervalMs: 600_000 } });
  writer.endpoint(`bench-outbox-idle-${suffix()}`, { inbox: false }).handle(Charge, async () => {});
  await writer.start();
  // Only the other process's relay dispatches: this one's dispatch and relay are stopped.
  await writer.outbox?.stop();
  const committed = new Map<string, number>();
  for (let i = 0; i < samples; i++) {
    const id = await writer.transaction(async ({ tx, publish }) => {
      await tx.query(`INSERT INTO ${SCHEMA}.ob_effects VALUES ('x', 'a', 1)`);
      return publish(Charged, { account: `a${i % 10}`, amount: 1 }, { key: `a${i % 10}` });
    });
    committed.set(id, performance.timeOrigin + performance.now());
    while (!confirmed.has(id)) await new Promise((r) => setTimeout(r, 0));
  }
  await writer.stop();
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  await out.remove();
  return [...committed].map(([id, at]) => (confirmed.get(id) as number) - at);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const batch = envelopes();
const modes = (['raw', 'immediate', 'outbox', 'raw-batch', 'outbox-batch'] as const).filter(
  (m) => !only || only.includes(m),
);
const rates = new Map<string, number[]>(modes.map((m) => [m, []]));
for (let i = 0; i < runs && modes.length > 0; i++) {
  for (const mode of modes) {
    const rate =
      mode === 'raw' ? await raw(batch) : mode === 'raw-batch' ? await rawBatch(batch) : await sluice(batch, mode);
    rates.get(mode)?.push(rate);
  }
}
const m = (k: string) => median(rates.get(k) ?? []);
const list = (k: string) => (rates.get(k) ?? []).map(fmt).join(', ');
if (modes.length > 0) {
  console.log(
    `outbox on RabbitMQ + PostgreSQL, ${fmt(total)} messages × ${runs} runs, ${fmt(keys)} keys, pool ${POOL}; every event checked exactly once`,
  );
}
for (const mode of modes) {
  const vs = (k: string) => (rates.has(k) && k !== mode ? `  vs ${k} ${(m(mode) / m(k)).toFixed(2)}×` : '');
  const versus = mode.endsWith('batch') ? vs('raw-batch') : `${vs('raw')}${vs('immediate')}`;
  console.log(`  ${mode.padEnd(14)} ${fmt(m(mode)).padStart(8)} msg/s  [${list(mode)}]${versus}`);
}
if (modes.length > 0) console.log('CPU µs per message (medians): this process, PostgreSQL, RabbitMQ');
for (const mode of modes) {
  const samples = cpuByMode.get(mode) ?? [];
  const of = (k: string) => median(samples.map((s) => s[k] ?? 0));
  const sum = of('node') + of('postgres') + of('beam.smp');
  console.log(
    `  ${mode.padEnd(14)} node ${fmt(of('node')).padStart(5)}  postgres ${fmt(of('postgres')).padStart(5)}  rabbitmq ${fmt(of('beam.smp')).padStart(5)}  total ${fmt(sum).padStart(5)}`,
  );
}
if (samples > 0) {
  const inProcess = await latencyInProcess();
  const relayed = await latencyThroughRelay();
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  console.log(`latency commit → broker-confirmed, ${fmt(samples)} samples, one at a time`);
  console.log(`  in process          p50 ${ms(percentile(inProcess, 50))}  p99 ${ms(percentile(inProcess, 99))}`);
  console.log(`  relay, NOTIFY       p50 ${ms(percentile(relayed, 50))}  p99 ${ms(percentile(relayed, 99))}`);
}
await admin.end();
