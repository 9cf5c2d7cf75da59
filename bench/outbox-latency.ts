// The latency part of bench/outbox.ts: from a commit (`bus.transaction` returning) to the broker's
// confirmation of its message, one at a time, in process and through the relay of another process
// (bench/outbox-relay.ts, woken by NOTIFY; this process's own dispatch stopped).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Bus, TransportDefinition } from '../src/index.js';
import type { PostgresTransaction } from '../src/inbox/postgres/index.js';
import { rabbitmqTransport } from '../transports/rabbitmq/index.js';
import { Charge, Charged, fmt, latch, resetTables, SCHEMA, sink, sluiceBus, suffix } from './outbox-kit.js';

/** A transport that reports when the broker confirmed each message (its id, epoch ms). */
export function timedRabbitmq(confirmed: (messageId: string, at: number) => void): TransportDefinition {
  const base = rabbitmqTransport() as TransportDefinition;
  return {
    ...base,
    create(config, deps) {
      const t = base.create(config, deps);
      const publish = t.publish.bind(t);
      t.publish = async (m) => {
        await publish(m);
        confirmed(m.messageId, performance.timeOrigin + performance.now());
      };
      return t;
    },
  };
}

const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] as number;

/**
 * Commits `samples` transactions on `bus`, each writing an effect and publishing one event, and waits
 * for each event's confirmation (in `confirmed`, by id) before the next: the latency of one commit, not
 * of a queue behind it. `yieldTurn` is how the wait gives way to the work it waits for.
 */
async function commitOneAtATime(
  bus: Bus<PostgresTransaction>,
  samples: number,
  confirmed: ReadonlyMap<string, number>,
  yieldTurn: () => Promise<unknown>,
): Promise<number[]> {
  const committed = new Map<string, number>();
  for (let i = 0; i < samples; i++) {
    const id = await bus.transaction(async ({ tx, publish }) => {
      await tx.query(`INSERT INTO ${SCHEMA}.ob_effects VALUES ('x', 'a', 1)`);
      return publish(Charged, { account: `a${i % 10}`, amount: 1 }, { key: `a${i % 10}` });
    });
    committed.set(id, performance.timeOrigin + performance.now());
    while (!confirmed.has(id)) await yieldTurn();
  }
  return [...committed].map(([id, at]) => (confirmed.get(id) as number) - at);
}

async function latencyInProcess(admin: pg.Pool, samples: number): Promise<number[]> {
  await resetTables(admin);
  const out = await sink();
  const confirmed = new Map<string, number>();
  const bus = sluiceBus(
    {},
    timedRabbitmq((id, at) => confirmed.set(id, at)),
  );
  bus.endpoint(`bench-outbox-idle-${suffix()}`, { inbox: false }).handle(Charge, async () => {});
  await bus.start();
  const latencies = await commitOneAtATime(bus, samples, confirmed, () => new Promise((r) => setImmediate(r)));
  await bus.stop();
  await out.remove();
  return latencies;
}

async function latencyThroughRelay(admin: pg.Pool, samples: number): Promise<number[]> {
  await resetTables(admin);
  const out = await sink();
  const relayScript = fileURLToPath(new URL('./outbox-relay.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', relayScript], { stdio: ['ignore', 'pipe', 'inherit'] });
  const confirmed = new Map<string, number>();
  let buffer = '';
  const ready = latch();
  child.stdout?.on('data', (chunk) => {
    buffer += String(chunk);
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line === 'READY') ready.open();
      else {
        const [id, at] = line.split(' ');
        if (id && at) confirmed.set(id, Number(at));
      }
    }
  });
  await ready.done;
  const writer = sluiceBus({ outbox: { table: 'ob_outbox', retentionMs: 0, backupPollIntervalMs: 600_000 } });
  writer.endpoint(`bench-outbox-idle-${suffix()}`, { inbox: false }).handle(Charge, async () => {});
  await writer.start();
  // Only the other process's relay dispatches: this one's dispatch and relay are stopped.
  await writer.outbox?.stop();
  const latencies = await commitOneAtATime(writer, samples, confirmed, () => new Promise((r) => setTimeout(r, 0)));
  await writer.stop();
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  await out.remove();
  return latencies;
}

/** Measures both latencies with `samples` commits each and prints their p50 and p99. */
export async function reportLatency(admin: pg.Pool, samples: number): Promise<void> {
  const inProcess = await latencyInProcess(admin, samples);
  const relayed = await latencyThroughRelay(admin, samples);
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  console.log(`latency commit → broker-confirmed, ${fmt(samples)} samples, one at a time`);
  console.log(`  in process          p50 ${ms(percentile(inProcess, 50))}  p99 ${ms(percentile(inProcess, 99))}`);
  console.log(`  relay, NOTIFY       p50 ${ms(percentile(relayed, 50))}  p99 ${ms(percentile(relayed, 99))}`);
}
