// The raw amqplib + pg modes of bench/outbox.ts, the naive dual write Sluice is compared with: `raw`
// (one transaction per message) and `raw-batch` (one per batch, this box's ceiling for the batch mode).
import amqp from 'amqplib';
import pg from 'pg';
import { cloudEventsCodec, createEnvelope } from '../src/index.js';
import {
  AMQP_URL,
  BATCH_PREFETCH,
  BATCH_SIZE,
  Charged,
  check,
  latch,
  type ModeRun,
  PG_URL,
  POOL,
  prepare,
  removeInput,
  SCHEMA,
} from './outbox-kit.js';

type Body = { id: string; data: { account: string; amount: number } };

/** Raw amqplib + pg: consume, insert the effect and commit, then publish with a confirm, then ack. */
export async function raw(run: ModeRun): Promise<number> {
  const total = run.batch.length;
  const { queue: inQueue, out } = await prepare(run, 'bench-outbox-raw');
  const pool = new pg.Pool({ connectionString: PG_URL, max: POOL });
  const connection = await amqp.connect(AMQP_URL);
  const consume = await connection.createChannel();
  const publish = await connection.createConfirmChannel();
  await consume.prefetch(POOL * 2);
  let done = 0;
  const finished = latch();
  const started = performance.now();
  const cpu = run.cpu.start();
  await consume.consume(inQueue, (msg) => {
    if (!msg) return;
    void (async () => {
      const env = JSON.parse(msg.content.toString()) as Body;
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
      if (++done === total) finished.open();
    })();
  });
  await finished.done;
  const rate = total / ((performance.now() - started) / 1000);
  run.cpu.record('raw', cpu);
  await connection.close();
  await pool.end();
  await check(out, 'raw', total);
  await removeInput(inQueue);
  return rate;
}

/**
 * Raw amqplib + pg in batches, the ceiling of this box for the batch mode: consume with a large
 * prefetch, take up to 100 messages (or what came within 2 ms), insert their effects in one
 * transaction, commit, publish their events with confirms, then ack them. Up to `POOL` batches at once.
 */
export async function rawBatch(run: ModeRun): Promise<number> {
  const total = run.batch.length;
  const { queue: inQueue, out } = await prepare(run, 'bench-outbox-rawb');
  const pool = new pg.Pool({ connectionString: PG_URL, max: POOL });
  const connection = await amqp.connect(AMQP_URL);
  const consume = await connection.createChannel();
  const publish = await connection.createConfirmChannel();
  await consume.prefetch(BATCH_PREFETCH);
  let done = 0;
  const finished = latch();
  let waiting: amqp.ConsumeMessage[] = [];
  let timer: NodeJS.Timeout | undefined;
  const handle = async (messages: amqp.ConsumeMessage[]) => {
    const envs = messages.map((msg) => JSON.parse(msg.content.toString()) as Body);
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
    if (done === total) finished.open();
  };
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    const messages = waiting;
    waiting = [];
    if (messages.length > 0) void handle(messages);
  };
  const started = performance.now();
  const cpu = run.cpu.start();
  await consume.consume(inQueue, (msg) => {
    if (!msg) return;
    waiting.push(msg);
    if (waiting.length >= BATCH_SIZE) flush();
    else timer ??= setTimeout(flush, 2);
  });
  await finished.done;
  const rate = total / ((performance.now() - started) / 1000);
  run.cpu.record('raw-batch', cpu);
  await connection.close();
  await pool.end();
  await check(out, 'raw-batch', total);
  await removeInput(inQueue);
  return rate;
}
