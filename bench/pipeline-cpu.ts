// The pipeline's own cost per message, Sluice only, on the memory transport: for profiling
// (`node --cpu-prof`) and for before/after comparisons in alternating processes (issue 18). Prints,
// per run, msg/s and CPU µs per message (process user+system time over the measured span, which a
// loaded box disturbs far less than wall time), then the medians.
//
//   npm run build && node --import tsx bench/pipeline-cpu.ts --build dist ... (or:)
//   npx tsx bench/pipeline-cpu.ts [--build dist] [--messages 200000] [--runs 5] [--concurrency 64]
//     [--prefetch 500] [--keys 100] [--handler sync|async] [--against ../other-checkout]
// `--against <checkout>`: an A/B in one process against another checkout's compiled build (a
// worktree of an earlier commit, built): the runs alternate (`--runs` each), each after a full GC
// when node runs with `--expose-gc`, and the medians and their ratio are printed.
// `--handler async`: the no-op handler is an `async` function (what most real handlers are), so
// every stage's look at the outcome waits for its promise; `sync` (default): a plain function.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import {
  handlerOf,
  loadCore,
  loadCoreAt,
  type Measured,
  measure,
  parseBuild,
  parseHandlerKind,
} from './load-sluice.js';

const { values } = parseArgs({
  options: {
    build: { type: 'string' },
    messages: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
    prefetch: { type: 'string', default: '500' },
    keys: { type: 'string', default: '100' },
    handler: { type: 'string', default: 'sync' },
    against: { type: 'string' },
  },
});
const build = parseBuild(values.build);
const total = Number(values.messages);
const runs = Number(values.runs);
const concurrency = Number(values.concurrency);
const prefetch = Number(values.prefetch);
const keys = Number(values.keys);
const handlerKind = parseHandlerKind(values.handler);
type Core = Awaited<ReturnType<typeof loadCore>>;
const silent = pino({ level: 'silent' });
const payload = 'x'.repeat(128);

/** A contender: one build of Sluice and the pre-encoded messages made with it. */
function contender(core: Core) {
  const Tick = core.defineMessage('bench.tick.v1', z.object({ n: z.number(), payload: z.string() }));
  const bodies = Array.from({ length: total }, (_, n) => {
    const envelope = core.createEnvelope(Tick.type, 'bench', { n, payload }, keys > 0 ? { key: `k${n % keys}` } : {});
    return { messageId: envelope.id, body: core.cloudEventsCodec.encode(envelope), key: envelope.key };
  });
  return { core, Tick, bodies };
}

async function run({ core, Tick, bodies }: ReturnType<typeof contender>): Promise<Measured> {
  const { createBus, createMemoryBroker, memoryTransport } = core;
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
  bus.endpoint('bench', { concurrency, prefetch }).handle(
    Tick,
    handlerOf(handlerKind, () => {
      if (++done === total) resolve();
    }),
  );
  const queue = broker.queue('bench');
  for (const b of bodies)
    queue.enqueue({ messageId: b.messageId, body: b.body, headers: {}, key: b.key, deliveryCount: 0 });
  const stop = measure(total);
  await bus.start();
  await finished;
  const measured = stop();
  await bus.stop();
  return measured;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const gc = (globalThis as { gc?: () => void }).gc;
const contenders: { name: string; of: ReturnType<typeof contender>; rates: number[]; cpus: number[] }[] = [
  { name: values.against ? 'this' : build, of: contender(await loadCore(build)), rates: [], cpus: [] },
];
if (values.against) {
  contenders.push({ name: 'against', of: contender(await loadCoreAt(values.against)), rates: [], cpus: [] });
}
console.log(
  `pipeline cpu: ${total} messages × ${runs}, concurrency ${concurrency}, prefetch ${prefetch}, keys ${keys}, handler ${handlerKind}, build ${build}, node ${process.version}` +
    (values.against ? `, against ${values.against} (alternating${gc ? ', full GC before each run' : ''})` : ''),
);
for (let i = 0; i < runs; i++) {
  // Alternate which contender goes first.
  const order = i % 2 === 0 ? contenders : [...contenders].reverse();
  for (const c of order) {
    gc?.();
    const r = await run(c.of);
    c.rates.push(r.rate);
    c.cpus.push(r.cpuUs);
    console.log(`  run ${i + 1} ${c.name}: ${Math.round(r.rate)} msg/s, ${r.cpuUs.toFixed(2)} µs CPU/msg`);
  }
}
for (const c of contenders) {
  const prefix = contenders.length > 1 ? `median ${c.name}` : 'median';
  console.log(`${prefix}: ${Math.round(median(c.rates))} msg/s, ${median(c.cpus).toFixed(2)} µs CPU/msg`);
}
const [self, other] = contenders;
if (self && other) {
  console.log(`CPU per message, this / against: ${(median(self.cpus) / median(other.cpus)).toFixed(3)}`);
}
