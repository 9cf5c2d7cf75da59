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
// This file holds the arguments, the Sluice modes, the run loop and the report; the shared parts are
// in outbox-kit.ts, the raw modes in outbox-raw.ts, the latency in outbox-latency.ts.
//
//   npx tsx bench/outbox.ts [messages=10000] [runs=3] [latencySamples=2000] [modes=raw,immediate,outbox,raw-batch,outbox-batch] [keys=100]
import pg from 'pg';
import {
  BATCH_PREFETCH,
  BATCH_SIZE,
  Charge,
  Charged,
  CpuByMode,
  check,
  envelopes,
  fmt,
  latch,
  median,
  type ModeRun,
  PG_URL,
  POOL,
  prepare,
  removeInput,
  SCHEMA,
  sluiceBus,
} from './outbox-kit.js';
import { reportLatency } from './outbox-latency.js';
import { raw, rawBatch } from './outbox-raw.js';

const total = Number(process.argv[2] ?? 10_000);
const runs = Number(process.argv[3] ?? 3);
const samples = Number(process.argv[4] ?? 2_000);
/** Which throughput modes to run (all by default), e.g. `immediate,outbox`; `none` skips them. */
const only = process.argv[5]?.split(',');
/** Distinct keys (accounts) among the messages; each event is keyed by its account. */
const keys = Number(process.argv[6] ?? 100);
const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });

type Mode = 'immediate' | 'outbox' | 'outbox-batch';

async function sluice(run: ModeRun, mode: Mode): Promise<number> {
  const total = run.batch.length;
  const { queue, out } = await prepare(run, `bench-outbox-${mode}`);
  const bus = sluiceBus();
  let done = 0;
  const finished = latch();
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
  const cpu = run.cpu.start();
  await bus.start();
  // Consumed and published: every delivery of the endpoint completed (its events confirmed first).
  const poll = setInterval(() => {
    done = bus.health().endpoints[queue]?.counters.completed ?? 0;
    if (done >= total) finished.open();
  }, 2);
  await finished.done;
  clearInterval(poll);
  // ... and every event out of the outbox (rows of a key wait for the key's earlier rows).
  while (bus.outbox && mode !== 'immediate' && (await bus.outbox.store.stats()).depth > 0) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const rate = total / ((performance.now() - started) / 1000);
  run.cpu.record(mode, cpu);
  await bus.stop();
  await check(out, `sluice ${mode}`, total);
  await removeInput(queue);
  return rate;
}

const run: ModeRun = { admin, batch: envelopes(total, keys), cpu: new CpuByMode(total) };
const modes = (['raw', 'immediate', 'outbox', 'raw-batch', 'outbox-batch'] as const).filter(
  (m) => !only || only.includes(m),
);
const rates = new Map<string, number[]>(modes.map((m) => [m, []]));
for (let i = 0; i < runs && modes.length > 0; i++) {
  for (const mode of modes) {
    const rate = mode === 'raw' ? await raw(run) : mode === 'raw-batch' ? await rawBatch(run) : await sluice(run, mode);
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
  const samples = run.cpu.samples(mode);
  const of = (k: string) => median(samples.map((s) => s[k] ?? 0));
  const sum = of('node') + of('postgres') + of('beam.smp');
  console.log(
    `  ${mode.padEnd(14)} node ${fmt(of('node')).padStart(5)}  postgres ${fmt(of('postgres')).padStart(5)}  rabbitmq ${fmt(of('beam.smp')).padStart(5)}  total ${fmt(sum).padStart(5)}`,
  );
}
if (samples > 0) await reportLatency(admin, samples);
await admin.end();
