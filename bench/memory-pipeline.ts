// Throughput of the full pipeline (decode → validate → schedule → retry → handler → settle) on the
// memory transport with a no-op handler, against the same transport consumed raw (JSON.parse +
// complete, no Sluice pipeline) in the same run. Both sides start from the same pre-filled queue
// (filled with `enqueue`: a queue filled through `send()` made the raw consumer ~30% slower and
// flattered the ratio), and the two alternate which runs first. Prints messages/s and the ratio, and
// each side's CPU µs per message (this process's user + system time over the measured span, which a
// shared box disturbs far less than the wall-clock rate) and their ratio.
//
//   npx tsx bench/memory-pipeline.ts [messages=200000] [runs=5] [--build src|dist]
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import type { OutgoingMessage } from '../src/transport-core/index.js';
import { loadCore, type Measured, measure, parseBuild } from './load-sluice.js';

const { values, positionals } = parseArgs({ options: { build: { type: 'string' } }, allowPositionals: true });
const build = parseBuild(values.build);
const { cloudEventsCodec, createBus, createEnvelope, createMemoryBroker, defineMessage, memoryTransport, systemClock } =
  await loadCore(build);
const total = Number(positionals[0] ?? 200_000);
const runs = Number(positionals[1] ?? 5);
const Tick = defineMessage('bench.tick.v1', z.object({ n: z.number(), payload: z.string() }));
const silent = pino({ level: 'silent' });

function messages(): OutgoingMessage[] {
  const payload = 'x'.repeat(128);
  return Array.from({ length: total }, (_, n) => {
    const envelope = createEnvelope(Tick.type, 'bench', { n, payload }, { key: `k${n % 64}` });
    return {
      messageId: envelope.id,
      body: cloudEventsCodec.encode(envelope),
      headers: {},
      contentType: 'application/json',
      key: envelope.key,
      messageType: Tick.type,
    };
  });
}

type MemoryBroker = ReturnType<typeof createMemoryBroker>;

/** Fills a queue of the broker directly, the same way for both contenders. */
function fill(broker: MemoryBroker, queueName: string, batch: OutgoingMessage[]): void {
  const queue = broker.queue(queueName);
  for (const m of batch)
    queue.enqueue({ messageId: m.messageId, body: m.body, headers: {}, key: m.key, deliveryCount: 0 });
}

async function raw(prefetch: number, batch: OutgoingMessage[]): Promise<Measured> {
  const broker = createMemoryBroker();
  const transport = memoryTransport({ broker }).create(
    { kind: 'memory', lockTimeoutMs: 60_000 },
    { logger: silent, clock: systemClock },
  );
  await transport.connect();
  fill(broker, 'raw', batch);
  let done = 0;
  const stop = measure(total);
  await new Promise<void>((resolve) => {
    void transport.consume(
      'raw',
      (d) => {
        JSON.parse(d.body.toString());
        void d.complete().then(() => {
          if (++done === total) resolve();
        });
      },
      { prefetch },
    );
  });
  const measured = stop();
  await transport.close();
  return measured;
}

async function sluice(concurrency: number, batch: OutgoingMessage[]): Promise<Measured> {
  const broker = createMemoryBroker();
  const bus = createBus(
    { transport: { kind: 'memory' }, shutdown: { signals: [] }, logging: { level: 'silent' } },
    { transports: [memoryTransport({ broker })], logger: silent },
  );
  let done = 0;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => {
    resolve = r;
  });
  bus.endpoint('bench', { concurrency, prefetch: concurrency * 2 }).handle(Tick, () => {
    if (++done === total) resolve();
  });
  fill(broker, 'bench', batch);
  const stop = measure(total);
  await bus.start();
  await finished;
  const measured = stop();
  await bus.stop();
  return measured;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const batch = messages();
console.log(
  `memory pipeline: ${fmt(total)} messages × ${runs} runs, no-op handler, build ${build}, node ${process.version}`,
);
for (const concurrency of [1, 16]) {
  const raws: Measured[] = [];
  const sluices: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    // Alternate which contender runs first: the second of a pair meets a warmer heap.
    if (i % 2 === 0) {
      raws.push(await raw(concurrency * 2, batch));
      sluices.push(await sluice(concurrency, batch));
    } else {
      sluices.push(await sluice(concurrency, batch));
      raws.push(await raw(concurrency * 2, batch));
    }
  }
  const sluiceRates = sluices.map((m) => m.rate);
  const r = median(raws.map((m) => m.rate));
  const s = median(sluiceRates);
  const rCpu = median(raws.map((m) => m.cpuUs));
  const sCpu = median(sluices.map((m) => m.cpuUs));
  console.log(
    `concurrency ${String(concurrency).padStart(2)}: sluice ${fmt(s)} msg/s (min ${fmt(Math.min(...sluiceRates))}, max ${fmt(Math.max(...sluiceRates))}) | ` +
      `raw transport ${fmt(r)} msg/s | ratio ${(s / r).toFixed(2)} | overhead ${(1e6 / s - 1e6 / r).toFixed(2)} µs/msg | ` +
      `CPU µs/msg sluice ${sCpu.toFixed(2)}, raw ${rCpu.toFixed(2)}, raw/sluice ${(rCpu / sCpu).toFixed(2)}`,
  );
}
