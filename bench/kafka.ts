// Throughput of Sluice on Kafka (bus, no inbox, no-op handler) against raw kafkajs eachBatch, on the
// same pre-produced topic in the same run. Each run reads the whole topic with a fresh consumer
// group; raw and Sluice runs alternate. Rate = messages / (last message time - first message time),
// so group joins are not counted.
//
//   npx tsx bench/kafka.ts [--messages 50000] [--runs 5] [--concurrency 64] [--prefetch 500]
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import pino from 'pino';
import { z } from 'zod';
import { createBus, defineMessage } from '../src/index.js';
import { ensureKafka, KAFKA_BROKERS } from '../test/infra/kafka/kafka.mjs';
import { kafkaTransport } from '../transports/kafka/index.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '50000' },
    runs: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
    prefetch: { type: 'string', default: '500' },
    bytes: { type: 'string', default: '256' },
  },
});
const N = Number(values.messages);
const RUNS = Number(values.runs);
const CONCURRENCY = Number(values.concurrency);
const PREFETCH = Number(values.prefetch);
const BYTES = Number(values.bytes);

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
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] });
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
}

/**
 * Raw kafkajs eachBatch. `parse`: each value is JSON-parsed, the least any real consumer does;
 * without it the loop only counts records.
 */
async function raw(run: number, parse = false): Promise<Run> {
  const consumer = kafka.consumer({
    groupId: `bench-raw${parse ? '-parse' : ''}-${topic}-${run}`,
    maxWaitTimeInMs: 100,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  let first = 0;
  let last = 0;
  const started = performance.now();
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        if (seen === 0) first = performance.now();
        for (const message of batch.messages) {
          if (parse && message.value) JSON.parse(message.value.toString());
          seen++;
        }
        if (seen >= N) {
          last = performance.now();
          resolve();
        }
      },
    });
  });
  await done;
  const wallMs = performance.now() - started;
  await consumer.disconnect();
  return { rate: (N / (last - first)) * 1000, wallMs };
}

async function sluice(run: number): Promise<Run> {
  const bus = createBus(
    {
      service: 'bench',
      transport: { kind: 'kafka', brokers: KAFKA_BROKERS, maxWaitTimeMs: 100, clientLogLevel: 'nothing' },
      shutdown: { signals: [], timeoutMs: 5_000 },
    },
    { transports: [kafkaTransport()], logger: pino({ level: 'silent' }) },
  );
  let seen = 0;
  let first = 0;
  let last = 0;
  let resolve: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  bus
    .endpoint(`bench-sluice-${topic}-${run}`, {
      address: topic,
      concurrency: CONCURRENCY,
      prefetch: PREFETCH,
      retry: { kind: 'none' },
    })
    .handle(Item, async () => {
      if (seen === 0) first = performance.now();
      if (++seen === N) {
        last = performance.now();
        resolve();
      }
    });
  const started = performance.now();
  await bus.start();
  await done;
  const wallMs = performance.now() - started;
  await bus.stop();
  return { rate: (N / (last - first)) * 1000, wallMs };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

await produce();
console.log(`topic ${topic}: ${N} messages of ${BYTES} bytes, 1 partition, 100 keys; ${RUNS} runs each`);
console.log(`sluice endpoint: concurrency ${CONCURRENCY}, prefetch ${PREFETCH}, no inbox, no-op handler`);
const raws: Run[] = [];
const parses: Run[] = [];
const sluices: Run[] = [];
for (let run = 0; run < RUNS; run++) {
  const r = await raw(run);
  raws.push(r);
  const p = await raw(run, true);
  parses.push(p);
  const s = await sluice(run);
  sluices.push(s);
  console.log(
    `run ${run + 1}: raw ${Math.round(r.rate).toLocaleString('en')} msg/s (wall ${Math.round(r.wallMs)} ms)  ` +
      `raw+parse ${Math.round(p.rate).toLocaleString('en')} msg/s  ` +
      `sluice ${Math.round(s.rate).toLocaleString('en')} msg/s (wall ${Math.round(s.wallMs)} ms)`,
  );
}
const rawMedian = median(raws.map((r) => r.rate));
const parseMedian = median(parses.map((r) => r.rate));
const sluiceMedian = median(sluices.map((r) => r.rate));
console.log(`median raw kafkajs eachBatch: ${Math.round(rawMedian).toLocaleString('en')} msg/s`);
console.log(`median sluice bus:            ${Math.round(sluiceMedian).toLocaleString('en')} msg/s`);
console.log(`median raw eachBatch + JSON.parse: ${Math.round(parseMedian).toLocaleString('en')} msg/s`);
console.log(`ratio sluice/raw:             ${(sluiceMedian / rawMedian).toFixed(2)}x`);
console.log(`ratio sluice/raw+parse:       ${(sluiceMedian / parseMedian).toFixed(2)}x`);
