// Throughput of Sluice on Kafka (bus, no inbox, no-op handler) against what a user would write by
// hand instead, on the same pre-produced topic in the same run (issue 18):
// - "eachMessage": kafkajs eachMessage + JSON.parse + zod (envelope fields and data), auto-commit —
//   the typical hand-written consumer;
// - "careful batch": kafkajs eachBatch + JSON.parse + the same zod + resolveOffset per message +
//   commitOffsetsIfNecessary + heartbeat — a careful at-least-once consumer;
// - "raw eachBatch": a no-op eachBatch that never reads a value (a reference line only);
// - "transport": Sluice's Kafka transport consumed directly, each delivery decoded with the
//   CloudEvents codec, its data checked with zod, and completed — no bus, no pipeline. A diagnostic
//   line: what Sluice costs on Kafka before its pipeline (decode → validate → schedule → gate →
//   retry → handler → settle) runs; sluice minus transport is the pipeline's share.
// Each run reads the whole topic with a fresh consumer group; the contenders rotate their order from
// run to run. Rate = messages / (last message time - first message time), so group joins are not
// counted; CPU = this process's user+system time per message over the same span.
//
//   npx tsx bench/kafka.ts [--messages 50000] [--runs 5] [--partitions 1] [--concurrency 64]
//                          [--prefetch 500] [--bytes 256] [--build src|dist] [--handler async|sync]
//                          [--contenders eachMessage,careful,sluice,raw,transport]   (a subset: for profiles)
//                          [--against ../other-checkout] [--fetch-bytes <n>]
// `--fetch-bytes <n>`: every contender fetches up to n bytes per partition (kafkajs's and Sluice's
// `maxBytesPerPartition`); without it each runs with its own default (kafkajs 1 MiB, Sluice 4 MiB).
// `--against <checkout>`: adds the contender "against", Sluice from another checkout's compiled build
// (a worktree of an earlier commit, `npm run build` run in it), alternating with this one in the same
// process, and prints the ratio of the two: separate processes on a shared box differ by more than the
// change being measured.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import pino from 'pino';
import { z } from 'zod';
import { ensureKafka, KAFKA_BROKERS } from '../test/infra/kafka/kafka.mjs';
import {
  handlerOf,
  loadCore,
  loadCoreAt,
  loadKafka,
  loadKafkaAt,
  parseBuild,
  parseHandlerKind,
} from './load-sluice.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '50000' },
    runs: { type: 'string', default: '5' },
    partitions: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '64' },
    prefetch: { type: 'string', default: '500' },
    bytes: { type: 'string', default: '256' },
    build: { type: 'string' },
    handler: { type: 'string', default: 'async' },
    contenders: { type: 'string', default: 'eachMessage,careful,sluice,raw' },
    against: { type: 'string' },
    'fetch-bytes': { type: 'string' },
  },
});
const build = parseBuild(values.build);
const HANDLER = parseHandlerKind(values.handler);
const core = await loadCore(build);
const { defineMessage, cloudEventsCodec, systemClock } = core;
const { kafkaTransport, KafkaTransport, KafkaTransportConfigSchema } = await loadKafka(build);
const N = Number(values.messages);
const RUNS = Number(values.runs);
const CONCURRENCY = Number(values.concurrency);
const PREFETCH = Number(values.prefetch);
const BYTES = Number(values.bytes);
const PARTITIONS = Number(values.partitions);
const FETCH_BYTES = values['fetch-bytes'] === undefined ? undefined : Number(values['fetch-bytes']);
if (FETCH_BYTES !== undefined && !(Number.isInteger(FETCH_BYTES) && FETCH_BYTES >= 1024)) {
  throw new Error(`--fetch-bytes: a whole number of bytes, at least 1024 (got ${values['fetch-bytes']})`);
}
const fetchBytes = FETCH_BYTES === undefined ? {} : { maxBytesPerPartition: FETCH_BYTES };

await ensureKafka();
const kafka = new kafkajs.Kafka({
  clientId: 'sluice-bench',
  brokers: KAFKA_BROKERS,
  logLevel: kafkajs.logLevel.NOTHING,
});
const topic = `bench-${randomUUID().slice(0, 8)}`;
const type = `bench.item-${topic}.v1`;
const Item = defineMessage(type, z.object({ i: z.number(), pad: z.string() }));

async function produce(): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
  });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
  await producer.connect();
  const body = (i: number) => {
    const event = {
      specversion: '1.0',
      id: randomUUID(),
      source: 'bench',
      type,
      time: new Date().toISOString(),
      subject: `k${i % 100}`,
      datacontenttype: 'application/json',
      data: { i, pad: '' },
    };
    const size = Buffer.byteLength(JSON.stringify(event));
    event.data.pad = 'x'.repeat(Math.max(0, BYTES - size));
    return Buffer.from(JSON.stringify(event));
  };
  for (let start = 0; start < N; start += 1000) {
    const messages = [];
    for (let i = start; i < Math.min(N, start + 1000); i++) messages.push({ key: `k${i % 100}`, value: body(i) });
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();
}

interface Run {
  rate: number;
  wallMs: number;
  cpuUsPerMessage: number;
}

/** What the hand-written consumers check: the CloudEvents fields and the data, with zod. */
const EventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
  time: z.string().datetime({ offset: true }),
  subject: z.string().optional(),
  datacontenttype: z.string().optional(),
  data: Item.schema,
});

/** Counts messages and times the span from the first to the last, wall and CPU. */
class Meter {
  seen = 0;
  #first = 0;
  #last = 0;
  #cpuFirst: NodeJS.CpuUsage = { user: 0, system: 0 };
  #cpu = 0;
  readonly started = performance.now();
  readonly done: Promise<void>;
  #resolve!: () => void;
  constructor() {
    this.done = new Promise<void>((resolve) => {
      this.#resolve = resolve;
    });
  }
  tick(): void {
    if (this.seen === 0) {
      this.#first = performance.now();
      this.#cpuFirst = process.cpuUsage();
    }
    if (++this.seen === N) {
      this.#last = performance.now();
      const used = process.cpuUsage(this.#cpuFirst);
      this.#cpu = used.user + used.system;
      this.#resolve();
    }
  }
  result(): Run {
    return {
      rate: (N / (this.#last - this.#first)) * 1000,
      wallMs: performance.now() - this.started,
      cpuUsPerMessage: this.#cpu / N,
    };
  }
}

type Contender = 'raw' | 'eachMessage' | 'careful' | 'sluice' | 'against' | 'transport';

async function handWritten(kind: 'raw' | 'eachMessage' | 'careful', run: number): Promise<Run> {
  const consumer = kafka.consumer({ groupId: `bench-${kind}-${topic}-${run}`, maxWaitTimeInMs: 100, ...fetchBytes });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const meter = new Meter();
  if (kind === 'eachMessage') {
    void consumer.run({
      autoCommit: true,
      eachMessage: async ({ message }) => {
        if (message.value) EventSchema.parse(JSON.parse(message.value.toString()));
        meter.tick();
      },
    });
  } else if (kind === 'careful') {
    void consumer.run({
      eachBatchAutoResolve: false,
      autoCommit: true,
      eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isRunning, isStale }) => {
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break;
          if (message.value) EventSchema.parse(JSON.parse(message.value.toString()));
          resolveOffset(message.offset);
          meter.tick();
        }
        await commitOffsetsIfNecessary();
        await heartbeat();
      },
    });
  } else {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        for (const _ of batch.messages) meter.tick();
      },
    });
  }
  await meter.done;
  const result = meter.result();
  await consumer.disconnect();
  return result;
}

/**
 * Sluice's Kafka transport without the bus: the endpoint's group and topics declared as the bus
 * would, each delivery decoded (codec), its data checked (zod), counted, and completed. Counted
 * where the bus's no-op handler counts (once the message is valid, before it is settled): counted
 * after `complete()` resolved instead, the first count would come only after the whole first
 * buffer was worked off (a settlement here frees its slot at once, so the pump hands out the whole
 * buffer in one go), and that work would fall outside the measured span.
 */
async function transportOnly(run: number): Promise<Run> {
  const config = KafkaTransportConfigSchema.parse({
    kind: 'kafka',
    brokers: KAFKA_BROKERS,
    maxWaitTimeMs: 100,
    clientLogLevel: 'nothing',
    ...fetchBytes,
  });
  const transport = new KafkaTransport(config, { logger: pino({ level: 'silent' }), clock: systemClock });
  await transport.connect();
  // The bus declares the handled type too (its consumer also reads the type's topic): the same here.
  await transport.declare({ address: topic, endpoint: `bench-transport-${topic}-${run}`, messageTypes: [type] });
  const meter = new Meter();
  const consumer = await transport.consume(
    topic,
    (delivery) => {
      const decoded = cloudEventsCodec.decode(delivery.body);
      if (!decoded.ok) throw new Error(`bench: undecodable record: ${decoded.description}`);
      Item.schema.parse(decoded.envelope.data);
      meter.tick();
      delivery.complete().catch((error: unknown) => {
        console.error('bench: a completion failed', error);
        process.exitCode = 1;
      });
    },
    { prefetch: PREFETCH },
  );
  await meter.done;
  const result = meter.result();
  await consumer.close();
  await transport.close();
  return result;
}

/** A build of Sluice to run: this checkout's, or `--against`'s, each with its own message contract. */
interface SluiceBuild {
  readonly createBus: typeof core.createBus;
  readonly kafkaTransport: typeof kafkaTransport;
  readonly item: typeof Item;
}
const thisBuild: SluiceBuild = { createBus: core.createBus, kafkaTransport, item: Item };
const againstBuild: SluiceBuild | undefined = values.against ? await loadBuildAt(values.against) : undefined;

async function loadBuildAt(checkout: string): Promise<SluiceBuild> {
  const other = await loadCoreAt(checkout);
  const { kafkaTransport } = await loadKafkaAt(checkout);
  return { createBus: other.createBus, kafkaTransport, item: other.defineMessage(type, Item.schema) };
}

async function sluice(run: number, { createBus, kafkaTransport, item }: SluiceBuild, name: string): Promise<Run> {
  const bus = createBus(
    {
      service: 'bench',
      transport: {
        kind: 'kafka',
        brokers: KAFKA_BROKERS,
        maxWaitTimeMs: 100,
        clientLogLevel: 'nothing',
        ...fetchBytes,
      },
      shutdown: { signals: [], timeoutMs: 5_000 },
    },
    { transports: [kafkaTransport()], logger: pino({ level: 'silent' }) },
  );
  const meter = new Meter();
  bus
    .endpoint(`bench-${name}-${topic}-${run}`, {
      address: topic,
      concurrency: CONCURRENCY,
      prefetch: PREFETCH,
      retry: { kind: 'none' },
    })
    .handle(
      item,
      handlerOf(HANDLER, () => meter.tick()),
    );
  await bus.start();
  await meter.done;
  const result = meter.result();
  await bus.stop();
  return result;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const fmt = (n: number) => Math.round(n).toLocaleString('en');

/**
 * The node flags this process runs with (the loader's own left out): the young generation's size
 * (`--max-semi-space-size`) moves Sluice's rate on Kafka more than the hand-written consumers'.
 */
function runtimeFlags(): string {
  const argv = process.execArgv.filter(
    (a, i, all) => !/^--(import|require|loader)\b/.test(a) && !/^--(import|require|loader)$/.test(all[i - 1] ?? ''),
  );
  const options = process.env.NODE_OPTIONS?.trim();
  const all = [...argv, ...(options ? [`NODE_OPTIONS=${options}`] : [])];
  return all.length > 0 ? all.join(' ') : 'none (node defaults)';
}

await produce();
console.log(
  `topic ${topic}: ${fmt(N)} messages of ${BYTES} bytes, ${PARTITIONS} partition(s), 100 keys; ${RUNS} runs each; build ${build}`,
);
console.log(`sluice endpoint: concurrency ${CONCURRENCY}, prefetch ${PREFETCH}, no inbox, no-op handler`);
console.log(`node ${process.version}, runtime flags (shared by every contender): ${runtimeFlags()}`);
console.log(
  FETCH_BYTES === undefined
    ? 'fetch size per partition: each contender its default (kafkajs 1 MiB, Sluice 4 MiB)'
    : `fetch size per partition: ${fmt(FETCH_BYTES)} bytes for every contender`,
);
const ALL: readonly Contender[] = ['eachMessage', 'careful', 'sluice', 'raw', 'transport'];
const contenders = values.contenders.split(',').map((c) => {
  if (!(ALL as readonly string[]).includes(c)) throw new Error(`--contenders: unknown contender ${c}`);
  return c as Contender;
});
if (againstBuild) {
  if (!contenders.includes('sluice')) contenders.push('sluice');
  contenders.push('against');
  console.log(`against: ${values.against} (its compiled build, alternating with this one in this process)`);
}
const results = new Map<Contender, Run[]>(contenders.map((c) => [c, []]));
for (let run = 0; run < RUNS; run++) {
  const order = contenders.map((_, i) => contenders[(i + run) % contenders.length] as Contender);
  const line: string[] = [];
  for (const c of order) {
    const r =
      c === 'sluice'
        ? await sluice(run, thisBuild, 'sluice')
        : c === 'against'
          ? await sluice(run, againstBuild as SluiceBuild, 'against')
          : c === 'transport'
            ? await transportOnly(run)
            : await handWritten(c, run);
    results.get(c)?.push(r);
    line.push(`${c} ${fmt(r.rate)} msg/s ${r.cpuUsPerMessage.toFixed(1)} µs`);
  }
  console.log(`run ${run + 1}: ${line.join(' | ')}`);
}
const med = (c: Contender) => ({
  rate: median((results.get(c) ?? []).map((r) => r.rate)),
  cpu: median((results.get(c) ?? []).map((r) => r.cpuUsPerMessage)),
});
const names: Record<Contender, string> = {
  eachMessage: 'kafkajs eachMessage + JSON.parse + zod, auto-commit',
  careful: 'kafkajs eachBatch + JSON.parse + zod + resolveOffset/commit/heartbeat',
  sluice: `Sluice bus (${HANDLER} handler)`,
  against: `Sluice bus (${HANDLER} handler), ${values.against}`,
  raw: 'raw eachBatch, values never read (reference)',
  transport: 'Sluice Kafka transport + codec + zod + complete, no pipeline',
};
for (const c of contenders) {
  const m = med(c);
  console.log(`median ${names[c].padEnd(72)} ${fmt(m.rate).padStart(9)} msg/s  ${m.cpu.toFixed(1)} µs CPU/msg`);
}
// The rate ratio, and the inverse ratio of CPU per message beside it: on a box where the consumers
// are CPU-bound the two agree, and the second is far less disturbed by the box's other work.
const ratio = (c: Contender, label: string, target: string) => {
  if (!contenders.includes('sluice') || !contenders.includes(c)) return;
  const rate = med('sluice').rate / med(c).rate;
  const cpu = med(c).cpu / med('sluice').cpu;
  console.log(`ratio sluice / ${label} ${rate.toFixed(2)}x${target}; by CPU per message ${cpu.toFixed(2)}x`);
};
ratio('careful', 'careful batch:', ' (target >= 0.9)');
ratio('eachMessage', 'eachMessage:  ', ' (target >= 1.2)');
ratio('raw', 'raw reference:', '');
ratio('transport', 'transport only:', '');
ratio('against', 'against:      ', '');
