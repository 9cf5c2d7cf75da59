/**
 * Consume-and-ack throughput on RabbitMQ: Sluice (bus, no inbox, no-op handler) against raw
 * amqplib with the same prefetch and queue type, and rascal as a peer, in the same run. A fourth
 * client, `amqplib-coalesced`, is raw amqplib acking the way Sluice does (one `multiple` ack per
 * event-loop turn), to separate the gain of coalesced acks from the cost of Sluice's pipeline; a
 * fifth, `amqplib-coalesced-validated`, also parses each body and checks it with zod — the work Sluice
 * does with a message, written by hand (the fair comparison issue 18 asks for).
 *
 *   npx tsx bench/rabbitmq.ts [--messages 20000] [--runs 5] [--prefetch 100] [--types quorum,classic]
 *                             [--build src|dist]
 *
 * Each measurement gets a fresh queue pre-filled with persistent 256-byte CloudEvents messages,
 * then times first delivery → last ack, and this process's CPU time (user + system) over the same
 * span per message (the broker runs in its own process; CPU per message is far less disturbed by a
 * loaded machine than the rate). Clients take turns within each run so that drift of the shared
 * machine hits all of them alike. Prints medians (min–max), the ratio Sluice / raw, and CPU µs/msg.
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import pino from 'pino';
import { z } from 'zod';
import { loadCore, loadRabbitmq, parseBuild } from './load-sluice.js';

const URL = 'amqp://guest:guest@127.0.0.1:5672';
const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    runs: { type: 'string', default: '5' },
    prefetch: { type: 'string', default: '100' },
    types: { type: 'string', default: 'quorum,classic' },
    clients: { type: 'string', default: 'sluice,amqplib,rascal,amqplib-coalesced,amqplib-coalesced-validated' },
    build: { type: 'string' },
  },
});
const build = parseBuild(values.build);
const { cloudEventsCodec, createBus, createEnvelope, defineMessage } = await loadCore(build);
const { rabbitmqTransport } = await loadRabbitmq(build);
const N = Number(values.messages);
const RUNS = Number(values.runs);
const PREFETCH = Number(values.prefetch);
const TYPES = String(values.types).split(',') as ('quorum' | 'classic')[];
const CLIENTS = String(values.clients).split(',');

const Tick = defineMessage('bench.tick.v1', z.object({ n: z.number(), pad: z.string() }));

/** A CloudEvents body of exactly 256 bytes, valid for `Tick`. */
function body(): Buffer {
  let pad = '';
  for (;;) {
    const bytes = cloudEventsCodec.encode(createEnvelope(Tick.type, 'bench', { n: 1, pad }));
    if (bytes.length >= 256) return bytes;
    pad += 'x';
  }
}
const BODY = body();

/** A measurement: wall time first delivery → last ack, and this process's CPU µs per message over it. */
interface Measured {
  ms: number;
  cpuUs: number;
}

/** Starts a measurement at the first delivery; `end` closes it. */
function span(): { begin(): void; end(): Measured } {
  let start = 0;
  let cpu: NodeJS.CpuUsage | undefined;
  return {
    begin() {
      start = performance.now();
      cpu = process.cpuUsage();
    },
    end() {
      const used = process.cpuUsage(cpu);
      return { ms: performance.now() - start, cpuUs: (used.user + used.system) / N };
    },
  };
}

const queueArgs = (type: 'quorum' | 'classic') => (type === 'quorum' ? { 'x-queue-type': 'quorum' } : {});

async function prefill(connection: amqp.ChannelModel, queue: string, type: 'quorum' | 'classic'): Promise<void> {
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(queue, { durable: true, arguments: queueArgs(type) });
  for (let i = 0; i < N; i += 1000) {
    for (let j = i; j < Math.min(N, i + 1000); j++) {
      channel.sendToQueue(queue, BODY, {
        persistent: true,
        messageId: `m-${j}`,
        contentType: cloudEventsCodec.contentType,
      });
    }
    await channel.waitForConfirms();
  }
  await channel.close();
}

async function rawAmqplib(connection: amqp.ChannelModel, queue: string): Promise<Measured> {
  const channel = await connection.createChannel();
  await channel.prefetch(PREFETCH);
  let acked = 0;
  const measure = span();
  const done = new Promise<Measured>((resolve) => {
    void channel.consume(queue, (message) => {
      if (!message) return;
      if (acked === 0) measure.begin();
      channel.ack(message);
      if (++acked === N) resolve(measure.end());
    });
  });
  const ms = await done;
  await channel.close();
  return ms;
}

/** What a hand-written consumer checks, as Sluice does: the CloudEvents fields and the data, with zod. */
const EventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
  time: z.string().datetime({ offset: true }),
  datacontenttype: z.string().optional(),
  data: Tick.schema,
});

/**
 * Raw amqplib acking like Sluice does: once per event-loop turn, `multiple` up to the highest tag.
 * With `validate`, each body is also parsed and checked with zod (`amqplib-coalesced-validated`):
 * the work Sluice does with a message, by hand.
 */
async function rawAmqplibCoalesced(connection: amqp.ChannelModel, queue: string, validate = false): Promise<Measured> {
  const channel = await connection.createChannel();
  await channel.prefetch(PREFETCH);
  let acked = 0;
  const measure = span();
  let last: amqp.ConsumeMessage | undefined;
  const done = new Promise<Measured>((resolve) => {
    void channel.consume(queue, (message) => {
      if (!message) return;
      if (acked === 0) measure.begin();
      if (validate) EventSchema.parse(JSON.parse(message.content.toString()));
      if (!last) {
        setImmediate(() => {
          if (last) channel.ack(last, true);
          last = undefined;
        });
      }
      last = message;
      if (++acked === N) setImmediate(() => resolve(measure.end()));
    });
  });
  const ms = await done;
  await channel.close();
  return ms;
}

async function sluice(queue: string, type: 'quorum' | 'classic'): Promise<Measured> {
  const bus = createBus(
    {
      service: 'bench',
      transport: { kind: 'rabbitmq', url: URL, queueType: type },
      logging: { level: 'warn' },
      shutdown: { signals: [], timeoutMs: 5_000 },
    },
    { transports: [rabbitmqTransport()], logger: pino({ level: 'warn' }) },
  );
  let handled = 0;
  const measure = span();
  let resolveAll!: () => void;
  const all = new Promise<void>((resolve) => {
    resolveAll = resolve;
  });
  bus.endpoint(queue, { concurrency: PREFETCH, prefetch: PREFETCH, retry: { kind: 'none' } }).handle(Tick, async () => {
    if (handled === 0) measure.begin();
    if (++handled === N) resolveAll();
  });
  await bus.start();
  await all;
  const completed = () => bus.health().endpoints[queue]?.counters.completed ?? 0;
  while (completed() < N) await new Promise((resolve) => setImmediate(resolve));
  const measured = measure.end();
  await bus.stop();
  return measured;
}

interface RascalSubscription {
  on(event: 'message', fn: (message: unknown, content: unknown, ackOrNack: () => void) => void): RascalSubscription;
  on(event: 'error', fn: (error: unknown) => void): RascalSubscription;
  cancel(): Promise<void>;
}
interface RascalBroker {
  subscribe(name: string): Promise<RascalSubscription>;
  shutdown(): Promise<void>;
  on(event: 'error', fn: (error: unknown) => void): void;
}
const rascal = createRequire(import.meta.url)('rascal') as {
  BrokerAsPromised: { create(config: unknown): Promise<RascalBroker> };
  withDefaultConfig(config: unknown): unknown;
};

async function rascalPeer(queue: string): Promise<Measured> {
  const config = rascal.withDefaultConfig({
    vhosts: {
      '/': {
        connection: { url: URL },
        queues: { [queue]: { assert: false, check: true } },
        subscriptions: { bench: { queue, prefetch: PREFETCH } },
      },
    },
  });
  const broker = await rascal.BrokerAsPromised.create(config);
  broker.on('error', () => {});
  let acked = 0;
  const measure = span();
  const subscription = await broker.subscribe('bench');
  const measured = await new Promise<Measured>((resolve) => {
    subscription
      .on('message', (_message, _content, ackOrNack) => {
        if (acked === 0) measure.begin();
        ackOrNack();
        if (++acked === N) resolve(measure.end());
      })
      .on('error', () => {});
  });
  await subscription.cancel();
  await broker.shutdown();
  return measured;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const connection = await amqp.connect(URL);
const results = new Map<string, number[]>();
const cpus = new Map<string, number[]>();
console.log(
  `${N} persistent ${BODY.length}-byte messages, prefetch ${PREFETCH}, ${RUNS} runs, build ${build}, node ${process.version}`,
);
for (const type of TYPES) {
  for (let run = 0; run < RUNS; run++) {
    // Rotate the order so that no client always goes first.
    const order = CLIENTS.map((_, i) => CLIENTS[(i + run) % CLIENTS.length] as string);
    for (const client of order) {
      const queue = `bench-${client}-${type}-${Date.now().toString(36)}`;
      await prefill(connection, queue, type);
      const { ms, cpuUs } =
        client === 'sluice'
          ? await sluice(queue, type)
          : client === 'amqplib'
            ? await rawAmqplib(connection, queue)
            : client === 'amqplib-coalesced' || client === 'amqplib-coalesced-validated'
              ? await rawAmqplibCoalesced(connection, queue, client === 'amqplib-coalesced-validated')
              : await rascalPeer(queue);
      const rate = (N / ms) * 1000;
      const key = `${type} ${client}`;
      results.set(key, [...(results.get(key) ?? []), rate]);
      cpus.set(key, [...(cpus.get(key) ?? []), cpuUs]);
      process.stdout.write(
        `  ${type} run ${run + 1} ${client.padEnd(17)} ${fmt(rate)} msgs/s ${cpuUs.toFixed(1)} µs CPU/msg\n`,
      );
      const ch = await connection.createChannel();
      await ch.deleteQueue(queue);
      await ch.deleteQueue(`${queue}.dlq`).catch(() => {});
      await ch.close().catch(() => {});
    }
  }
}
await connection.close();

console.log(
  '\n| queue | client | msgs/s median (min–max) | vs raw amqplib | vs amqplib-coalesced | CPU µs/msg |\n| --- | --- | ---: | ---: | ---: | ---: |',
);
for (const type of TYPES) {
  // A client not in this run's --clients has no median: its column says so.
  const ratio = (m: number, of: number) => (Number.isNaN(of) ? '—' : `${(m / of).toFixed(2)}×`);
  const raw = median(results.get(`${type} amqplib`) ?? [Number.NaN]);
  const coalesced = median(results.get(`${type} amqplib-coalesced`) ?? [Number.NaN]);
  for (const client of CLIENTS) {
    const rates = results.get(`${type} ${client}`) ?? [];
    const m = median(rates);
    console.log(
      `| ${type} | ${client} | ${fmt(m)} (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}) | ${ratio(m, raw)} | ${ratio(m, coalesced)} | ${median(cpus.get(`${type} ${client}`) ?? []).toFixed(1)} |`,
    );
  }
}
